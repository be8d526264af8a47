"""Human approval before a promotion (`gate.require_approval`).

When the gate passes, the training flow registers the candidate, then pauses and waits for an
answer: the Resume button in the Prefect UI (a form with `approve`, `reason`, `actor`) or
`genrec approve RUN` / `genrec reject RUN`, where RUN is the training flow run's id. No answer within
`gate.approval_timeout` seconds counts as a rejection; the champion stays where it was.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from prefect import get_client, pause_flow_run
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

from genrec.errors import NotFoundError, UsageError


class ApprovalInput(RunInput):
    """The answer a reviewer gives to a training run that waits for approval."""

    approve: bool = Field(description="Promote the candidate (true) or keep the current champion (false).")
    reason: str = Field("", description="Why: recorded with the decision and in the champion's history.")
    actor: str = Field("Prefect UI", description="Who answers.")


@dataclass(frozen=True)
class Approval:
    approved: bool
    reason: str
    actor: str
    answered: bool
    """False when no answer came within the timeout (then `approved` is False)."""

    def sentence(self) -> str:
        if not self.answered:
            return f"approval: {self.reason}: not promoted"
        verdict = "approved" if self.approved else "rejected"
        because = f": {self.reason}" if self.reason else ""
        return f"approval: {verdict} by {self.actor}{because}"

    def as_dict(self) -> dict:
        return asdict(self)


def wait_for_approval(flow_run_id: uuid.UUID, timeout: int, poll_interval: int) -> Approval:
    """Pause the current flow run until a reviewer answers or `timeout` seconds pass."""
    try:
        answer = pause_flow_run(wait_for_input=ApprovalInput, timeout=timeout, poll_interval=poll_interval,
                                key="genrec-approval")
    except FlowPauseTimeout:
        # The run goes on (to record the outcome and finish cleanly) instead of failing as paused.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Running(message="approval timed out"), force=True)
        return Approval(False, f"no answer within {timeout} s", "", answered=False)
    return Approval(bool(answer.approve), answer.reason, answer.actor, answered=True)


def answer(run: str, approve: bool, reason: str, actor: str) -> None:
    """Resume the training flow run `run` (its id) that waits for approval, with this answer."""
    try:
        flow_run_id = uuid.UUID(run)
    except ValueError:
        raise UsageError(f"{run!r} is not a flow run id (the UUID the waiting training run logged).") from None
    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            raise NotFoundError(f"No Prefect flow run {run} in the Prefect API in use.") from None
    if flow_run.state is None or not flow_run.state.is_paused():
        state = flow_run.state.name if flow_run.state else "no state"
        raise NotFoundError(f"Flow run {run} ({flow_run.name}) is not waiting for approval: its state is {state}.")
    resume_flow_run(flow_run_id, run_input={"approve": approve, "reason": reason, "actor": actor})
