"""Operations: what an operator's load balancer, orchestrator and Prometheus ask.

- ``/health``: the process answers (liveness); touches nothing else.
- ``/ready``: the database answers, its schema is at the code's migration head, and
  every SMS route (connector, or the simulator) is bound by some delivery process
  (readiness). 503 with the reason otherwise.
- ``/metrics``: Prometheus text format from ``prometheus-client``: HTTP requests by
  endpoint and code with latency histograms from every HTTP process, and the
  platform's state read from the database at scrape time (messages in flight by
  state, queue depth, connectors up, calls in progress, money held, unrated call
  records), so any one process answers for the whole installation.
"""
