//! Pure deployment engine: blue/green lifecycle, traffic schedules, alarm evaluation, rolling updates. No IO, injected time.
