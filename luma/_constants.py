"""Every tunable number and address of the client, in one place.

Values come from the provider's documentation (see README "Client"); the reasons for the
choices that the documentation leaves open are given next to them.
"""

from __future__ import annotations

DEFAULT_API_BASE = "https://api.kie.ai"
# The upload docs name a separate host; some older pages say api.kie.ai, so it is configurable.
DEFAULT_UPLOAD_BASE = "https://kieai.redpandaai.co"

PATH_CREATE = "/api/v1/modify/generate"
PATH_RECORD = "/api/v1/modify/record-info"
PATH_CREDITS = "/api/v1/chat/credit"
PATH_DOWNLOAD_URL = "/api/v1/common/download-url"
PATH_UPLOAD_STREAM = "/api/file-stream-upload"
PATH_UPLOAD_BASE64 = "/api/file-base64-upload"
PATH_UPLOAD_URL = "/api/file-url-upload"

# The upload host is reported to reject clients without a real User-Agent.
USER_AGENT = "luma-dashboard/1.0 (+python-httpx)"

DEFAULT_UPLOAD_PATH = "luma-dashboard"

# Seconds. Connect short so an unreachable host fails fast; reads longer for slow provider answers;
# uploads get a long write timeout since a 500 MB file takes time on a slow link.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 600.0

# Streamed uploads are read and reported to the progress callback in pieces of this size: small
# enough for a smooth progress bar, large enough that a 500 MB file takes ~2000 callbacks, not 10^5.
UPLOAD_CHUNK_BYTES = 256 * 1024

# Reads are retried; these bound how hard.
RETRY_MAX_ATTEMPTS = 5
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
RETRY_MAX_TOTAL = 30.0
RETRY_AFTER_CAP = 60.0

# 20 new generation requests per 10 s per account; more is refused with 429, not queued.
CREATE_LIMIT = 20
CREATE_WINDOW = 10.0

# Concurrent status reads when refreshing many tasks at once.
DEFAULT_CONCURRENCY = 16

# Input limits the provider documents for videoUrl.
MAX_VIDEO_BYTES = 500 * 1024 * 1024
MAX_VIDEO_SECONDS = 10.0
VIDEO_CONTAINERS = ("mp4", "mov", "avi")

# Polling advice: every 30 s (the quickstart polls every 10 s).
RECOMMENDED_POLL_SECONDS = 30.0

# Signed callbacks: how old a timestamp may be before it is refused.
SIGNATURE_WINDOW_SECONDS = 300

# Lifetimes, for telling users how long a link stays good.
DOWNLOAD_LINK_LIFETIME_SECONDS = 20 * 60
UPLOAD_LIFETIME_SECONDS = 3 * 24 * 3600
RESULT_LIFETIME_SECONDS = 14 * 24 * 3600
