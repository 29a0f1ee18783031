"""The demo's generated account passwords pass the password policy that the API enforces."""

from __future__ import annotations

from pathlib import Path

from backend.auth.password_policy import password_problem
from demo.environment import DemoState


def test_generated_demo_passwords_pass_the_policy(tmp_path: Path) -> None:
    for n in range(100):
        state = DemoState.load_or_create(tmp_path / str(n))
        for password in (state.lead_password, state.annotator_password):
            assert password_problem(password) is None, password
