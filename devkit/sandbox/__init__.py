"""A local stand-in for Redo's Update Fulfillment Status API, for the tests, demo and benchmark.

It validates every request against Redo's published schemas, answers like Redo, records every
call and injects faults on demand. ``SandboxServer`` runs it on a thread, ``python -m
devkit.sandbox`` as a process, and ``SandboxControl`` drives its control API.
"""

from devkit.sandbox.app import build_app
from devkit.sandbox.control import SandboxControl, SandboxWaitTimeout
from devkit.sandbox.server import SandboxServer

__all__ = ["SandboxControl", "SandboxServer", "SandboxWaitTimeout", "build_app"]
