"""``journal tail --token-command CMD``: a token provider that runs a command for each credential
(docs/30_WS_PROTOCOL.md#journal-tail)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable

from journal_api.client.subscriber import ClientError

__all__ = ["COMMAND_TIMEOUT_S", "command_token"]

COMMAND_TIMEOUT_S = 30.0


def command_token(command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Callable[[], Awaitable[str]]:
    """A provider that runs ``command`` (split like a shell line, run without a shell) and returns its stripped
    standard output; it raises :class:`ClientError` with the command's standard error when the command fails."""
    argv = shlex.split(command)
    if not argv:
        raise ValueError("--token-command is empty; name the command that prints a token")

    async def provide() -> str:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise ClientError(f"cannot run --token-command {argv[0]!r} ({exc.strerror or exc})") from None
        try:
            async with asyncio.timeout(timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ClientError(f"--token-command took more than {timeout_s:g} s; it was stopped") from None
        token = out.decode(errors="replace").strip()
        if process.returncode != 0:
            problem = err.decode(errors="replace").strip() or "no message"
            raise ClientError(f"--token-command exited with status {process.returncode}: {problem}")
        if not token:
            raise ClientError("--token-command printed nothing; it must print the token on standard output")
        return token

    return provide
