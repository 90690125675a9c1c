//! The control plane: HTTP API, reconcile loops, deployment driver.
