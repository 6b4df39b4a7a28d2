"""Two inline custom components (Streamlit components v2): a synced compare player and the tab title.

* :func:`compare_player` plays a task's input video and its result *together*: one play/pause
  button, one seek bar, and either the two side by side or one frame with a draggable wipe
  divider (the result on the divider's right, the input on its left).
* :func:`tab_title` sets the browser tab's title (``"(2 running) Luma video studio"``) and shows
  nothing on the page.
* :func:`media_url` turns video bytes (the demo's clips) into a URL the component can load, the
  way ``st.video`` registers bytes with Streamlit's media file manager.

Both components are declared once, at import: declaring one again under the same name on every
rerun would re-register it. They are inline (HTML, CSS and JavaScript strings below, no build
step, nothing loaded from another host) and isolated in a shadow root, styled only with the
``--st-*`` theme variables so they follow the app's light or dark theme.

``AppTest`` cannot render v2 components and cannot play media (a component is an element of
type ``bidi_component`` there, with nothing inside, and raises nothing): a page that wants its
videos checked under ``AppTest``, or cannot use the component, calls
``compare_player(..., fallback=True)``, which shows two plain ``st.video`` elements instead.

Streamlit loads an inline component's JavaScript from a ``blob:`` URL, so a page's content
security policy must allow ``blob:`` scripts for these components to run.

How the player keeps the two videos together (the JavaScript below):

* the result video is the clock; the input follows it. On every animation frame while playing
  (and on ``timeupdate``, ``seeked``, ``play`` and ``pause``) the input's time is corrected when
  it is more than :data:`DRIFT_PLAYING_S` away (:data:`DRIFT_PAUSED_S` when paused, so a paused
  frame pair matches exactly);
* a correcting seek during playback takes a moment in which the result keeps playing, so the
  target is placed ahead by the last measured seek time: one correction, not a chain of them;
* both loop at the end (the result loops, and its seek back to the start brings the input along)
  and are muted (browsers refuse to autoplay sound); an input a frame shorter than the result
  waits on its last frame for the loop instead of being sent past its end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import streamlit as st
from streamlit import config, runtime

__all__ = ["DRIFT_PAUSED_S", "DRIFT_PLAYING_S", "compare_player", "media_url", "tab_title"]

# More than one frame at 24 fps (0.042 s) apart is visible side by side; less is not, and
# correcting less would make the input seek all the time.
DRIFT_PLAYING_S = 0.05
# Paused, the two frames on screen should be the same frame: align to within a hundredth.
DRIFT_PAUSED_S = 0.01
# A correcting seek is aimed this far ahead at most, whatever the last seek took (a stalled
# network read must not send the input a second into the future).
_MAX_LEAD_S = 0.25
# The frame never gets smaller than this, whatever the caller asks: controls need the width.
_MIN_HEIGHT_PX = 120

_COMPARE_HTML = """
<div class="luma-compare" data-testid="luma-compare" data-mode="side" role="group"
     aria-label="Compare the input video with the result">
  <div class="stage" data-testid="luma-compare-stage">
    <figure class="pane pane-source">
      <video data-role="source" data-testid="luma-compare-source" muted playsinline
             preload="auto" aria-label="Input video"></video>
      <figcaption class="caption" data-role="source-label">Input</figcaption>
    </figure>
    <figure class="pane pane-result">
      <video data-role="result" data-testid="luma-compare-result" muted loop playsinline
             preload="auto" aria-label="Result video"></video>
      <figcaption class="caption" data-role="result-label">Result</figcaption>
    </figure>
    <input class="wipe" data-testid="luma-compare-wipe" type="range" min="0" max="100" step="1"
           value="50" aria-label="Wipe divider position, in percent of the width" hidden />
    <div class="divider" data-testid="luma-compare-divider" aria-hidden="true" hidden></div>
  </div>
  <div class="controls">
    <button class="play" data-testid="luma-compare-play" type="button" aria-label="Play both videos"
            disabled>
      <span class="play-icon" aria-hidden="true">&#9654;</span><span class="play-text">Play</span>
    </button>
    <input class="seek" data-testid="luma-compare-seek" type="range" min="0" max="0" step="0.01"
           value="0" aria-label="Seek both videos" disabled />
    <output class="time" data-testid="luma-compare-time" aria-live="off">0:00.0 / 0:00.0</output>
    <fieldset class="modes">
      <legend class="visually-hidden">Layout</legend>
      <label><input type="radio" name="mode" value="side" data-testid="luma-compare-mode-side"
                    checked /><span>Side by side</span></label>
      <label><input type="radio" name="mode" value="wipe" data-testid="luma-compare-mode-wipe"
                    /><span>Wipe</span></label>
    </fieldset>
  </div>
  <p class="status" data-testid="luma-compare-status" role="status"></p>
</div>
"""

_COMPARE_CSS = """
:host {
  display: block;
}
.luma-compare {
  --stage-height: 360px;
  --aspect: 1.7778;
  --wipe: 50%;
  color: var(--st-text-color);
  font-family: var(--st-font);
  font-size: var(--st-base-font-size);
}
.stage {
  position: relative;
  display: grid;
  grid-template-columns: 1fr 1fr;
  /* minmax(0, ...): a video's own size must not stretch the row past the frame's height. */
  grid-template-rows: minmax(0, 1fr);
  gap: 0.5rem;
  height: var(--stage-height);
}
.pane {
  position: relative;
  margin: 0;
  min-width: 0;
  min-height: 0;
  display: flex;
  flex-direction: column;
  gap: 0.25rem;
}
.pane video {
  flex: 1 1 auto;
  min-height: 0;
  width: 100%;
  height: 100%;
  object-fit: contain;
  background: var(--st-secondary-background-color);
  border: 1px solid var(--st-border-color);
  border-radius: var(--st-base-radius);
  box-sizing: border-box;
}
.caption {
  font-size: 0.875em;
  opacity: 0.8;
}
/* Wipe: both panes in the same grid cell, the result on top, clipped left of the divider. The
   frame takes the picture's shape, so the divider's percent is a percent of the picture, not of
   bars beside it. */
.luma-compare[data-mode="wipe"] .stage {
  grid-template-columns: 1fr;
  width: min(100%, calc(var(--stage-height) * var(--aspect)));
  margin-inline: auto;
}
.luma-compare[data-mode="wipe"] .pane {
  grid-area: 1 / 1;
}
.luma-compare[data-mode="wipe"] .pane-result video {
  clip-path: inset(0 0 0 var(--wipe));
}
.luma-compare[data-mode="wipe"] .caption {
  position: absolute;
  top: 0.5rem;
  padding: 0.125rem 0.5rem;
  background: var(--st-background-color);
  border-radius: var(--st-base-radius);
  z-index: 2;
}
.luma-compare[data-mode="wipe"] .pane-source .caption {
  left: 0.5rem;
}
.luma-compare[data-mode="wipe"] .pane-result .caption {
  right: 0.5rem;
}
.divider {
  position: absolute;
  top: 0;
  bottom: 0;
  left: var(--wipe);
  width: 2px;
  margin-left: -1px;
  background: var(--st-primary-color);
  pointer-events: none;
  z-index: 3;
}
.divider::after {
  content: "";
  position: absolute;
  top: 50%;
  left: 50%;
  width: 1rem;
  height: 1rem;
  transform: translate(-50%, -50%);
  border-radius: 50%;
  background: var(--st-primary-color);
  border: 2px solid var(--st-background-color);
}
/* The divider is dragged through a transparent range input laid over the whole frame. */
.wipe {
  position: absolute;
  inset: 0;
  width: 100%;
  height: 100%;
  margin: 0;
  opacity: 0;
  cursor: ew-resize;
  z-index: 4;
}
.wipe:focus-visible + .divider {
  outline: 2px solid var(--st-primary-color);
  outline-offset: 2px;
}
[hidden] {
  display: none !important;
}
.controls {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  gap: 0.5rem 0.75rem;
  margin-top: 0.5rem;
}
.play {
  display: inline-flex;
  align-items: center;
  gap: 0.375rem;
  min-width: 6rem;
  padding: 0.375rem 0.75rem;
  font: inherit;
  /* White on the primary colour, as Streamlit's own primary buttons: the page background is
     dark in a dark theme and would be unreadable on it. */
  color: #fff;
  background: var(--st-primary-color);
  border: 1px solid var(--st-primary-color);
  border-radius: var(--st-button-radius);
  cursor: pointer;
}
.play:disabled {
  opacity: 0.5;
  cursor: default;
}
.play:focus-visible,
.seek:focus-visible,
.modes input:focus-visible + span {
  outline: 2px solid var(--st-primary-color);
  outline-offset: 2px;
}
.seek {
  flex: 1 1 10rem;
  min-width: 6rem;
  accent-color: var(--st-primary-color);
}
.time {
  font-family: var(--st-code-font);
  font-size: 0.875em;
  font-variant-numeric: tabular-nums;
  white-space: nowrap;
}
.modes {
  display: inline-flex;
  margin: 0;
  padding: 0;
  border: 1px solid var(--st-widget-border-color, var(--st-border-color));
  border-radius: var(--st-button-radius);
  overflow: hidden;
}
.modes label {
  position: relative;
  cursor: pointer;
}
.modes input {
  position: absolute;
  opacity: 0;
  width: 1px;
  height: 1px;
}
.modes span {
  display: inline-block;
  padding: 0.375rem 0.75rem;
}
.modes input:checked + span {
  color: #fff;
  background: var(--st-primary-color);
}
.status:empty {
  display: none;
}
.status {
  margin: 0.5rem 0 0;
  color: var(--st-red-text-color, var(--st-text-color));
}
.visually-hidden {
  position: absolute;
  width: 1px;
  height: 1px;
  overflow: hidden;
  clip-path: inset(50%);
  white-space: nowrap;
}
"""

_COMPARE_JS = (
    """
// One player per mounted instance: the default export runs again on every data or theme
// change, and must reuse (not stack) what the first run set up.
const players = new WeakMap()
"""
    + f"""
const DRIFT_PLAYING = {DRIFT_PLAYING_S}
const DRIFT_PAUSED = {DRIFT_PAUSED_S}
const MAX_LEAD = {_MAX_LEAD_S}
const MIN_HEIGHT = {_MIN_HEIGHT_PX}
"""
    + """
function clock(seconds) {
  const t = Number.isFinite(seconds) && seconds > 0 ? seconds : 0
  const minutes = Math.floor(t / 60)
  const rest = (t - minutes * 60).toFixed(1).padStart(4, "0")
  return `${minutes}:${rest}`
}

function known(duration) {
  return Number.isFinite(duration) && duration > 0
}

function createPlayer(root) {
  const source = root.querySelector('video[data-role="source"]')
  const result = root.querySelector('video[data-role="result"]')
  // The result is the clock: it is what the user came to see; the input follows it.
  const master = result
  const follower = source
  const play = root.querySelector(".play")
  const playIcon = root.querySelector(".play-icon")
  const playText = root.querySelector(".play-text")
  const seek = root.querySelector(".seek")
  const time = root.querySelector(".time")
  const wipe = root.querySelector(".wipe")
  const divider = root.querySelector(".divider")
  const status = root.querySelector(".status")
  const modes = [...root.querySelectorAll('input[name="mode"]')]
  const errors = { source: "", result: "" }
  let frame = 0
  let scrubbing = false
  let lead = 0
  let correctionStarted = 0

  for (const video of [source, result]) {
    // Properties as well as attributes: autoplay policies look at the muted property.
    video.muted = true
    video.defaultMuted = true
    video.playsInline = true
  }
  // Only the clock loops; the input is sent back to the start with it. Looping on its own, a
  // shorter input would jump to its start a frame before the result does.
  master.loop = true
  follower.loop = false

  function ready() {
    return master.readyState >= 1 && follower.readyState >= 1
  }

  function length() {
    return known(master.duration) ? master.duration : 0
  }

  function setFollower(target) {
    correctionStarted = performance.now()
    follower.currentTime = target
  }

  // Bring the input to the result's time when they drifted apart (see the module docstring).
  function follow() {
    if (!ready()) return
    const playing = !master.paused
    const limit = known(follower.duration) ? follower.duration : Infinity
    const now = master.currentTime
    // A shorter input holds its last frame until the result loops and brings it back to 0.
    if (playing && now >= limit) return
    const threshold = playing ? DRIFT_PLAYING : DRIFT_PAUSED
    if (Math.abs(follower.currentTime - Math.min(now, limit)) > threshold) {
      setFollower(Math.min(now + (playing ? lead : 0), limit))
    }
    if (playing && follower.paused) follower.play().catch(() => {})
    if (!playing && !follower.paused) follower.pause()
  }

  function render() {
    const t = master.currentTime
    if (!scrubbing) seek.value = String(t)
    time.textContent = `${clock(t)} / ${clock(length())}`
    seek.setAttribute("aria-valuetext", `${clock(t)} of ${clock(length())}`)
    const playing = !master.paused
    play.setAttribute("aria-label", playing ? "Pause both videos" : "Play both videos")
    playIcon.textContent = playing ? "\\u275A\\u275A" : "\\u25B6"
    playText.textContent = playing ? "Pause" : "Play"
    root.dataset.playing = playing ? "true" : "false"
  }

  function tick() {
    follow()
    render()
    frame = master.paused ? 0 : requestAnimationFrame(tick)
  }

  function startTicking() {
    if (!frame) frame = requestAnimationFrame(tick)
  }

  function onMetadata() {
    seek.max = String(length())
    if (master.videoWidth > 0 && master.videoHeight > 0) {
      root.style.setProperty("--aspect", String(master.videoWidth / master.videoHeight))
    }
    const usable = ready() && !errors.source && !errors.result
    play.disabled = !usable
    seek.disabled = !usable
    root.dataset.ready = usable ? "true" : "false"
    follow()
    render()
  }

  function showErrors() {
    const lines = []
    if (errors.source) lines.push(errors.source)
    if (errors.result) lines.push(errors.result)
    status.textContent = lines.join(" ")
  }

  function onError(role, label) {
    return () => {
      errors[role] = `The ${label} video could not be loaded; reload the page, and if it still fails, open the task again.`
      showErrors()
      onMetadata()
    }
  }

  // Both start and stop from here, so a click never leaves one playing and one paused.
  function start() {
    if (!ready()) return
    follow()
    Promise.all([master.play(), follower.play()]).catch(() => {
      // A play() that a pause() overtook rejects with AbortError: nothing to report.
    })
  }

  function stop() {
    master.pause()
    follower.pause()
  }

  play.onclick = () => (master.paused ? start() : stop())

  seek.oninput = () => {
    scrubbing = true
    const t = Math.min(Math.max(0, Number(seek.value)), length())
    master.currentTime = t
    setFollower(known(follower.duration) ? Math.min(t, follower.duration) : t)
    render()
  }
  seek.onchange = () => {
    scrubbing = false
    render()
  }
  seek.onkeydown = (event) => {
    // Arrow keys move a second (five with Shift); the range's own 0.01 s step is too fine.
    const step = event.shiftKey ? 5 : 1
    const moves = { ArrowLeft: -step, ArrowDown: -step, ArrowRight: step, ArrowUp: step }
    let t = null
    if (event.key in moves) t = master.currentTime + moves[event.key]
    else if (event.key === "Home") t = 0
    else if (event.key === "End") t = length()
    if (t === null) return
    event.preventDefault()
    seek.value = String(Math.min(Math.max(0, t), length()))
    seek.oninput()
    seek.onchange()
  }

  function setWipe() {
    const value = Math.min(Math.max(0, Number(wipe.value)), 100)
    root.style.setProperty("--wipe", `${value}%`)
    wipe.setAttribute("aria-valuetext", `${value}% input, ${100 - value}% result`)
  }
  wipe.oninput = setWipe

  function setMode(mode) {
    root.dataset.mode = mode
    const wiping = mode === "wipe"
    wipe.hidden = !wiping
    divider.hidden = !wiping
    for (const input of modes) input.checked = input.value === mode
  }
  for (const input of modes) input.onchange = () => setMode(input.value)

  master.onplay = () => {
    follow()
    startTicking()
    render()
  }
  master.onpause = () => {
    follower.pause()
    follow()
    render()
  }
  master.ontimeupdate = () => {
    follow()
    if (!frame) render()
  }
  // A loop back to the start is a seek: the input follows at once, not a frame later.
  master.onseeking = () => follow()
  master.onseeked = () => {
    follow()
    render()
  }
  // The result waits for data: hold the input, or it runs ahead and has to jump back.
  master.onwaiting = () => follower.pause()
  master.onplaying = () => follow()
  follower.onseeked = () => {
    // How long a correcting seek took is how far ahead the next one should aim.
    if (correctionStarted && !master.paused) {
      lead = Math.min(MAX_LEAD, (performance.now() - correctionStarted) / 1000)
    }
    correctionStarted = 0
    follow()
  }
  for (const video of [source, result]) {
    video.onloadedmetadata = onMetadata
    video.ondurationchange = onMetadata
    video.onloadeddata = onMetadata
  }
  source.onerror = onError("source", "input")
  result.onerror = onError("result", "result")

  function load(video, role, url) {
    if ((video.getAttribute("src") ?? "") === url) return
    errors[role] = ""
    showErrors()
    stop()
    lead = 0
    if (url) video.setAttribute("src", url)
    else video.removeAttribute("src")
    video.load()
  }

  setWipe()
  setMode("side")

  return {
    update(data) {
      const labels = Array.isArray(data.labels) ? data.labels : []
      root.querySelector('[data-role="source-label"]').textContent = String(labels[0] ?? "Input")
      root.querySelector('[data-role="result-label"]').textContent = String(labels[1] ?? "Result")
      source.setAttribute("aria-label", `${String(labels[0] ?? "Input")} video`)
      result.setAttribute("aria-label", `${String(labels[1] ?? "Result")} video`)
      const height = Math.max(MIN_HEIGHT, Number(data.height) || 0)
      root.style.setProperty("--stage-height", `${height}px`)
      load(source, "source", String(data.source ?? ""))
      load(result, "result", String(data.result ?? ""))
      render()
    },
    destroy() {
      if (frame) cancelAnimationFrame(frame)
      frame = 0
      stop()
      // Dropping the sources lets the browser free the decoders and close the media requests.
      for (const video of [source, result]) {
        video.removeAttribute("src")
        video.load()
      }
    },
  }
}

export default function (component) {
  const { data, parentElement } = component
  const root = parentElement.querySelector(".luma-compare")
  if (!root) return
  let player = players.get(parentElement)
  if (!player) {
    player = createPlayer(root)
    players.set(parentElement, player)
  }
  player.update(data ?? {})
  return () => {
    player.destroy()
    players.delete(parentElement)
  }
}
"""
)

# Nothing to see: the element's only job is the tab title.
_TAB_TITLE_HTML = """
<span class="luma-tab-title" data-testid="luma-tab-title" hidden></span>
"""

_TAB_TITLE_CSS = """
:host {
  display: none;
}
.luma-tab-title {
  display: none;
}
"""

_TAB_TITLE_JS = """
// Per mounted instance: the title to keep, the title it replaced, and the observer.
const titles = new WeakMap()

export default function (component) {
  const { data, parentElement } = component
  const text = String(data?.text ?? "")
  let state = titles.get(parentElement)
  if (!state) {
    // Streamlit spaces every element apart; an element container with nothing to show must
    // not leave that gap, so it is taken out of the layout (display none keeps it mounted).
    const host = parentElement.host ?? parentElement
    const container = host.closest?.('[data-testid="stElementContainer"]')
    if (container) container.style.display = "none"
    state = { text, previous: document.title, observer: null }
    // Streamlit sets the title itself (page changes, page config): put ours back after it.
    state.observer = new MutationObserver(() => {
      if (state.text && document.title !== state.text) document.title = state.text
    })
    state.observer.observe(document.head, { subtree: true, childList: true, characterData: true })
    titles.set(parentElement, state)
  }
  state.text = text
  if (text && document.title !== text) document.title = text
  return () => {
    state.observer.disconnect()
    titles.delete(parentElement)
    if (document.title === state.text) document.title = state.previous
  }
}
"""

_COMPARE = st.components.v2.component("luma_compare_player", html=_COMPARE_HTML, css=_COMPARE_CSS, js=_COMPARE_JS)
_TAB_TITLE = st.components.v2.component("luma_tab_title", html=_TAB_TITLE_HTML, css=_TAB_TITLE_CSS, js=_TAB_TITLE_JS)


def media_url(data: bytes, mimetype: str = "video/mp4", *, key: str | None = None) -> str:
    """The URL (``/media/<id>.mp4``) at which this session's browser can load ``data``.

    Registered for the current script run exactly as ``st.video`` registers bytes, so the file
    lives as long as a run keeps asking for it. ``key`` names the slot on the page (give each
    video its own, e.g. ``"cmp.result"``): a new clip in the same slot replaces the old one
    instead of piling up during fragment reruns. Without it the slot is named after the bytes.
    Returns ``""`` outside ``streamlit run`` (a bare Python shell has no media server).
    """
    if not runtime.exists():
        return ""
    # Streamlit's own elements use delta paths such as "0.(1).2" here; "luma.media[...]" can
    # never collide with one, and is the same on every rerun.
    slot = key if key is not None else hashlib.sha256(data).hexdigest()[:16]
    url = runtime.get_instance().media_file_mgr.add(data, mimetype, f"luma.media[{slot}]")
    # st.video's frontend adds the server's base path to this URL; a component must do it here.
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base else url


def compare_player(
    source: str | bytes,
    result: str | bytes,
    *,
    key: str,
    height: int = 360,
    labels: Sequence[str] = ("Input", "Result"),
    fallback: bool = False,
) -> None:
    """The input video and its result, played, paused and sought together from one set of controls.

    ``source`` and ``result`` are URLs (a provider ``https://`` URL or one from
    :func:`media_url`) or the videos' bytes (registered here with :func:`media_url`). ``height``
    is the frame's height in pixels. ``fallback=True`` shows two plain ``st.video`` elements side
    by side instead: for ``AppTest`` (which cannot render this component) and anywhere the
    component cannot run. The fallback plays bytes and ``https://`` URLs; pass bytes rather than
    a :func:`media_url` URL when it may be used.
    """
    names = (list(labels) + ["Input", "Result"][len(labels) :])[:2]
    if fallback:
        for column, video, name in zip(st.columns(2), (source, result), names, strict=True):
            with column:
                st.caption(name)
                st.video(video, alt=f"{name} video")
        return
    urls = [
        media_url(video, key=f"{key}.{role}") if isinstance(video, bytes) else video
        for video, role in ((source, "source"), (result, "result"))
    ]
    _COMPARE(
        key=key,
        data={"source": urls[0], "result": urls[1], "labels": names, "height": max(height, _MIN_HEIGHT_PX)},
        height="content",
    )


def tab_title(text: str, *, key: str) -> None:
    """Set the browser tab's title to ``text`` (again whenever it changes); nothing is shown.

    When a run stops calling this, the element unmounts and the tab gets back the title it had.
    """
    _TAB_TITLE(key=key, data={"text": text}, height="content")
