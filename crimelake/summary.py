"""What a pipeline command reports at its end: every month, file, check or step that failed, and why.

A command exits non-zero when this list is not empty, so a caller (a shell, a scheduler) never takes a month that
did not load, a file rejected whole or a failed blocking check for success.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _first_line(text: str | None, limit: int = 300) -> str:
    line = next((x.strip() for x in (text or "").splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def problems(result) -> list[str]:
    """What went wrong in a Dagster run, one line each: steps that failed and why, failed checks of severity
    error with their description, and every file rejected whole."""
    import dagster as dg

    out = []
    for e in result.all_events:
        if e.event_type_value == "STEP_FAILURE":
            error = getattr(e.event_specific_data, "error", None)
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check itself is reported below
            reason = _first_line(error.message if error else None) or "no error recorded"
            out.append(f"step {e.step_key} failed: {reason}")
        elif e.event_type_value == "ASSET_CHECK_EVALUATION":
            data = e.asset_check_evaluation_data
            if data.passed or data.severity == dg.AssetCheckSeverity.WARN:
                continue
            asset = data.asset_key.to_user_string()
            rejected = data.metadata.get("rejected_files")
            files = getattr(rejected, "value", rejected) or []
            if files:
                out.extend(f"{asset}: file rejected whole: {f}" for f in files)
            else:
                out.append(f"check {asset}:{data.check_name} failed"
                           + (f": {_first_line(data.description)}" if data.description else ""))
        elif e.event_type_value in ("PIPELINE_FAILURE", "PIPELINE_CANCELED") and not out:
            out.append(f"run {'canceled' if 'CANCEL' in e.event_type_value else 'failed'}: {_first_line(e.message)}")
    if not result.success and not out:
        out.append("run failed (no failed step or check recorded)")
    return out


@dataclass
class Summary:
    """Failures as (scope, what) pairs: the scope is a month, a transform range, a forecast group or a file."""

    failures: list[tuple[str, str]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def fail(self, scope: str, what: str) -> None:
        self.failures.append((scope, what))

    def run(self, scope: str, success: bool, lines: list[str], run_id: str) -> None:
        """Record one run's problems; a failed run with none recorded still counts."""
        for line in lines:
            self.fail(scope, f"{line} (run {run_id[:8]})")
        if not success and not lines:
            self.fail(scope, f"run {run_id[:8]} failed")

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        if self.ok:
            return ["Summary: nothing failed" + (f" ({'; '.join(self.done)})." if self.done else ".")]
        width = max(len(s) for s, _ in self.failures)
        return [f"Summary: {len(self.failures)} failure{'s' if len(self.failures) > 1 else ''}"
                + (f" ({'; '.join(self.done)})" if self.done else "") + ":",
                *(f"  {s:<{width}}  {w}" for s, w in self.failures)]
