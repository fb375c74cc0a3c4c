"""Notifications, digests and reports (issue #7).

``urls`` (Apprise URL helpers, redaction) · ``channels`` (one Apprise URL each, tags/kinds/minimum)
· ``rules`` (events → messages) · ``noise`` (dedup, flap suppression, quiet hours, maintenance; pure)
· ``dispatch`` (per-channel workers, deadlines, retries, status) · ``history``/``digest`` (figures,
text, PNG chart) · ``schedule`` (digest times, durations) · ``service`` (``create_service(rt)``).
"""
