//! Pure domain logic shared by the control plane: clock, reconcile decisions, container health checks. No IO.
