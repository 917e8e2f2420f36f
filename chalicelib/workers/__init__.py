"""Bodies of the non-HTTP handlers: each module is a Blueprint that ``app.py`` registers.

A handler decodes its event and calls a service; nothing else happens here.

* ``outbox``     the table's stream: forwards new outbox events to the queues that react.
* ``schedules``  timed jobs (expiring unpaid orders every minute).
"""
