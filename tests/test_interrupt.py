from __future__ import annotations

import os
import signal

import pytest

from pipeline import interrupt


@pytest.fixture
def installed(monkeypatch):
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(interrupt, "_requested", None)
    interrupt.install()
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_is_raised_at_the_next_check(installed, sig, code):
    interrupt.check()  # nothing yet
    os.kill(os.getpid(), sig)  # handled at once in the main thread: only a flag is set
    with pytest.raises(interrupt.Interrupted) as caught:
        interrupt.check()
    assert caught.value.exit_code == code
    assert isinstance(caught.value, KeyboardInterrupt)


def test_second_signal_raises_at_once(installed):
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(interrupt.Interrupted):
        os.kill(os.getpid(), signal.SIGTERM)
