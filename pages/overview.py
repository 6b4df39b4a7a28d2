"""Overview: tasks and credits per day by status and by person, and how long tasks take."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from pages._support import runtime
from studio.ledger import LedgerUnavailable
from studio.text import plain

runtime.page_guard("pages/overview.py")

settings = runtime.settings()
st.header("Overview", anchor=False)
st.caption("What the team ran, what it cost and how long it took, day by day (UTC).")

if runtime.ledger_problem() is not None:
    st.stop()  # the frame (dashboard.py) has said why, above this page

today = datetime.now(UTC).date()
with st.container(horizontal=True, vertical_alignment="bottom"):
    span = st.date_input("Range", value=(today - timedelta(days=29), today), key="overview_range", max_value=today)
    mine = st.toggle("Only mine", key="overview_mine")
days = tuple(span) if isinstance(span, (tuple, list)) else (span,)
start: date = days[0] if days else today
end: date = days[1] if len(days) > 1 else start
since = datetime.combine(start, time.min, UTC)
until = datetime.combine(end, time.min, UTC) + timedelta(days=1)

try:
    rows = runtime.studio(settings).ledger.history(settings.mode, since=since, until=until)
except LedgerUnavailable as err:
    st.error(f"The task ledger stopped answering: {plain(err)}")
    st.stop()
who, _ = runtime.owner()
if mine:
    rows = [r for r in rows if r.owner == who]
if not rows:
    st.info("No tasks in this range.", icon=":material/monitoring:")
    st.stop()


def outcome(label: str) -> str:
    if label in ("Succeeded", "Succeeded (callback failed)"):
        return "Succeeded"
    if label in ("Generation failed", "Creation failed", "Not created"):
        return "Failed"
    if label in ("Queued", "Creating", "Not read yet", "Generating"):
        return "Running"
    return label  # Outcome unknown, Cancelled


frame = pd.DataFrame(
    {
        "day": [pd.Timestamp(r.created_at.date()) for r in rows],
        "outcome": [outcome(r.status_label) for r in rows],
        "person": [r.owner_name or "—" for r in rows],
        "credits": [
            (r.cost or 0) if r.state in ("created", "creating", "queued") and r.status_label != "Creation failed" else 0
            for r in rows
        ],
        "minutes": [
            (r.completed_at - r.submitted_at_best).total_seconds() / 60 if r.completed_at is not None else None
            for r in rows
        ],
    }
)
total = len(frame)
spent = int(frame["credits"].sum())
done = frame["minutes"].dropna()
for column, (label, value) in zip(
    st.columns(4),
    (
        ("Tasks", f"{total:,}"),
        ("Succeeded", f"{(frame['outcome'] == 'Succeeded').mean():.0%}"),
        ("Credits", f"{spent:,}"),
        ("Median time", f"{done.median():.1f} min" if len(done) else "—"),
    ),
    strict=True,
):
    column.metric(label, value, border=True)


def per_day(title: str, measure: str, axis: str, by: str, legend: str, key: str) -> None:
    """A bar per day of ``measure`` (a Vega-Lite aggregate), coloured by ``by``."""
    st.subheader(title, anchor=False)
    st.altair_chart(
        alt.Chart(frame).mark_bar().encode(
            x=alt.X("yearmonthdate(day):T", title=None),
            y=alt.Y(f"{measure}:Q", title=axis),
            color=alt.Color(f"{by}:N", title=legend),
            tooltip=["yearmonthdate(day):T", f"{by}:N", f"{measure}:Q"],
        ),
        key=key,
    )


left, right = st.columns(2)
with left:
    per_day("Tasks per day, by outcome", "count()", "tasks", "outcome", "Outcome", "overview_tasks")
with right:
    per_day("Credits per day, by person", "sum(credits)", "credits", "person", "Person", "overview_credits")
st.subheader("How long tasks take", anchor=False)
if len(done):
    st.altair_chart(
        alt.Chart(frame.dropna(subset=["minutes"])).mark_boxplot(extent="min-max").encode(
            x=alt.X("yearmonthdate(day):T", title=None),
            y=alt.Y("minutes:Q", title="minutes from submit to result"),
        ),
        key="overview_durations",
    )
    st.caption(
        f"Median {done.median():.1f} min; half of all tasks took between {done.quantile(0.25):.1f} and "
        f"{done.quantile(0.75):.1f} min; the longest {done.max():.1f} min."
    )
else:
    st.caption("No task in this range has finished yet.")
