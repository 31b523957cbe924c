"""The control plane: state shared by replicas (`state`), spend and rate limits, alerts, experiments
and replay. The request path reaches it through the gateway's admission stage only."""
