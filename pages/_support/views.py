"""Small Streamlit display helpers shared by pages (no page layout here)."""

from __future__ import annotations

import streamlit as st

from luma.preflight import Outcome, PreflightReport
from studio.text import plain

__all__ = ["show_report"]

_MARKS = {
    Outcome.PASS: ":green[:material/check_circle:]",
    Outcome.WARN: ":orange[:material/help:]",
    Outcome.FAIL: ":red[:material/cancel:]",
}
_WORDS = {Outcome.PASS: "Pass", Outcome.WARN: "Not checked", Outcome.FAIL: "Fail"}


def show_report(report: PreflightReport, *, what: str = "The video") -> None:
    """One line per check (pass / fail / warn, what was found, how to fix it), under a summary."""
    if not report.ok:
        st.error(
            f"{what} cannot be used yet. Fix the failed checks below, then check again; nothing is "
            "sent to the provider until they pass.",
            title="Submit is blocked",
            icon=":material/block:",
        )
    elif report.warnings:
        st.warning(
            "Some checks could not be run. You can still submit; the provider will refuse the "
            "video if it breaks its limits.",
            icon=":material/help:",
        )
    else:
        st.success(f"{what} passed every check.", icon=":material/verified:")
    for check in report.checks:
        line = f"{_MARKS[check.outcome]} **{check.title}: {_WORDS[check.outcome]}.** {plain(check.detail)}"
        if check.fix and check.outcome is not Outcome.PASS:
            label = "How to fix" if check.outcome is Outcome.FAIL else "What to do"
            line += f"  \n{label}: {plain(check.fix)}"
        st.markdown(line)
