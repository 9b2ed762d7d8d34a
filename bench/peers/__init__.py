"""The tools people would pick instead of queuectl, measured beside it in the same run.

task-spooler comes from the system's packages; huey and pgqueuer are installed into a
scratch virtual environment outside the project (never the project's dependencies), and
the code they run lives in `bench/peers/apps`, imported only by that environment.
"""

from __future__ import annotations
