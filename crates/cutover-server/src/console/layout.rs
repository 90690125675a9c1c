//! The page shell (head, navigation, theme, the live script) and the small
//! pieces every page draws: times, status badges, traffic bars, forms.

use super::auth::Session;
use maud::{DOCTYPE, Markup, html};

/// A whole page. `topic` is the event-stream topic that keeps it live.
pub(crate) fn page(title: &str, topic: Option<&str>, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Cutover" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#live" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "Cutover" }
                        a href="/" { "Services" }
                        a href="/#pipelines" { "Pipelines" }
                        a href="/alarms" { "Alarms" }
                        a href="/hosts" { "Hosts" }
                        a href="/registry" { "Registry" }
                    }
                    @if session.signed_in {
                        form method="post" action="/sign-out" {
                            (csrf(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="live" data-topic=[topic] {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with one message (errors, refusals).
pub(crate) fn message_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Cutover" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
            }
            body { main id="live" { h1 { (title) } p.error role="alert" { (message) } p { a href="/" { "Back to the overview" } } } }
        }
    }
}

/// The sign-in form. The token typed is never written back into a page.
pub(crate) fn sign_in(next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · Cutover" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                main id="live" {
                    h1 { "Sign in to Cutover" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form.card method="post" action="/sign-in" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button form posting to `action`, with hidden fields.
pub(crate) fn button_form(
    session: &Session,
    action: &str,
    label: &str,
    class: &str,
    fields: &[(&str, &str)],
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session))
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button class=(class) type="submit" { (label) }
        }
    }
}

/// A time (ms since the epoch) as `<time>`; the script shows it in the
/// browser's zone with a relative age.
pub(crate) fn time(ms: u64) -> Markup {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let shown = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    html! { time datetime=(iso) { (shown) } }
}

/// A length of time as people read it: `850 ms`, `12.3 s`, `4 min 5 s`.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// How a status reads: good, bad, busy or idle.
pub(crate) fn tone(status: &str) -> &'static str {
    match status {
        "Succeeded" | "HEALTHY" | "OK" | "RUNNING" | "Approved" | "Online" | "SUCCEEDED"
        | "COMPLETE" => "good",
        "Failed" | "Stopped" | "UNHEALTHY" | "ALARM" | "Rejected" | "Abandoned" | "Cancelled"
        | "Offline" | "FAILED" | "CRITICAL" | "HIGH" => "bad",
        "InProgress" | "Created" | "Ready" | "Baking" | "PENDING" | "PROVISIONING" | "Stopping"
        | "Queued" | "IN_PROGRESS" | "MEDIUM" => "busy",
        _ => "idle",
    }
}

/// A status badge (text, so colour is never the only signal).
pub(crate) fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (tone(status)) } { (status) } }
}

/// The production traffic split as a bar with its numbers.
pub(crate) fn traffic_bar(green: u8) -> Markup {
    let green = green.min(100);
    html! {
        div.traffic role="img" aria-label={ "Production traffic: " (green) "% replacement, " (100 - green) "% original" } {
            span.blue style={ "width:" (100 - green) "%" } {}
            span.green style={ "width:" (green) "%" } {}
        }
        small.traffic-label { (100 - green) "% original · " (green) "% replacement" }
    }
}
