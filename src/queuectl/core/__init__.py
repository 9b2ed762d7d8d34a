"""The pure core: job model, lifecycle rules, validation. No I/O, no clock."""
