"""Luma video studio: the script ``app.py`` serves (page config, gate, navigation, sidebar).

The frame of every page: page config, the access gate, navigation, the mode badge and credits
in the sidebar, the provider-outage banner, and a last-resort handler so no traceback ever
reaches a page. Pages live in pages/ and only do layout; pages/_support holds the Streamlit glue.

Start it with ``streamlit run app.py`` (app.py wraps this script in ``st.App`` for the web edge).
With no API key configured it runs in demo mode on the built-in emulator; see
.streamlit/secrets.toml.example for every setting.
"""

from __future__ import annotations

import streamlit as st

from luma.errors import LumaError
from pages._support import access, runtime
from pages._support.feedback import describe_error, last_resort, show_error
from pages._support.notices import notifier, show_spending
from studio.text import plain

st.set_page_config(
    page_title="Luma video studio",
    # An emoji is drawn locally; a :material/...: favicon is fetched from Google Fonts on every visit.
    page_icon="🎬",
    layout="wide",
    initial_sidebar_state="expanded",
)

runtime.drop_forged_widget_states()

PAGES = {
    "pages/submit.py": st.Page(
        "pages/submit.py",
        title="Submit",
        icon=":material/movie_edit:",
        default=True,
        help="Describe a change, pick a video, check it and start a modification task.",
    ),
    "pages/jobs.py": st.Page(
        "pages/jobs.py",
        title="Jobs",
        icon=":material/view_list:",
        help="Follow your tasks as they finish, watch and download results, import and export task ids.",
    ),
    "pages/sets.py": st.Page(
        "pages/sets.py",
        title="Sets",
        icon=":material/grid_view:",
        help="Review variant sets: every take in a grid, compare input and result, keep the best, download all.",
    ),
    "pages/overview.py": st.Page(
        "pages/overview.py",
        title="Overview",
        icon=":material/monitoring:",
        help="Tasks and credits per day by status and by person, and how long tasks take, over a chosen range.",
    ),
    "pages/settings.py": st.Page(
        "pages/settings.py",
        title="Settings",
        icon=":material/settings:",
        help="Use your own API key for this session, change base URLs and refresh timing, test the connection.",
    ),
}

# Nothing else renders, and no API call is made, until the gate opens.
if not access.gate(page.url_path for page in PAGES.values()):
    st.stop()

page = st.navigation(list(PAGES.values()), position="sidebar")

# A deep link that Streamlit first routed around this script (see runtime.page_guard) continues here.
target = st.session_state.pop(runtime.DEEP_LINK, None)
if target in PAGES and PAGES[target].title != page.title:
    st.switch_page(PAGES[target], query_params=st.query_params.to_dict())

runtime.start_session()
ledger_problem = runtime.ledger_problem()  # also starts the server's tracker where no lifespan did
if ledger_problem is None:
    runtime.studio().tracker.nudge()  # a page load reconciles what is overdue (hosted apps sleep)
    runtime.restore_from_url()
runtime.mirror_to_url()

reading = None
with st.sidebar:
    try:
        current = runtime.settings()
        if current.demo:
            st.badge("Demo mode", icon=":material/science:", color="orange")
            st.caption(
                "No API key is set, so a built-in emulator answers instead of the provider: "
                "tasks run locally in seconds and cost nothing."
            )
        else:
            st.badge("Live", icon=":material/cloud_done:", color="green")
            source = {
                "session": "your key for this session",
                "secrets": "the key in the app's secrets",
                "environment": "the LUMA_API_KEY environment variable",
            }[current.key_source]
            st.caption(f"Requests go to **{plain(current.api_host)}** with {source}. Each task costs credits.")
        reading = runtime.balance()
        if reading.balance is not None:
            # Plain text, not st.metric: the metric's browser code (with a charting library for its
            # sparkline) made a first page settle ~0.45 s later (python -m bench --only cold).
            st.markdown(f":material/toll: **{reading.balance:,}** credits left")
        elif reading.problem is not None:
            st.caption(f":material/warning: Credits unavailable: {reading.problem.title}. {reading.problem.next_step}")
        if ledger_problem is None:
            show_spending(current)
    except Exception as err:  # noqa: BLE001 - the sidebar must never take the page down
        view = describe_error(err)
        st.caption(f":material/warning: {view.title}. {view.next_step}")
        if not isinstance(err, LumaError):
            last_resort(err, context="Setting up the connection failed.")
    if runtime.auth_configured() and st.user.is_logged_in:
        st.button("Sign out", key="access_logout", icon=":material/logout:", on_click=st.logout)

if ledger_problem is not None:
    st.error(f"{plain(ledger_problem.message)}\n\n**Next step:** {ledger_problem.next_step}",
             title=ledger_problem.title, icon=":material/database:")

if reading is not None and reading.outage:
    # The provider did not answer a quick read: say so on every page rather than leave it silent.
    problem = reading.problem
    st.warning(
        f"{problem.title if problem else 'No answer'}. Pages stay usable and every task is kept with "
        "its last known status; the dashboard keeps trying in the background. "
        + (problem.next_step if problem else ""),
        title="The provider is not answering",
        icon=":material/cloud_off:",
    )

if ledger_problem is None:
    notifier()

with runtime.frame_running():
    try:
        page.run()
    except LumaError as err:
        show_error(err)
    except Exception as err:  # noqa: BLE001 - last resort: a plain sentence, the traceback to the log
        last_resort(err)
