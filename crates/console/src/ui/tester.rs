//! The configuration tester (`/console/tracing`, linked from the masthead): the effective
//! tracing configuration and its mode, the diagnose probes on demand, and a form to check an
//! edited configuration and copy the working block. Works without script: the probes and the
//! check run on the server when the forms are sent. A posted draft is at most
//! [`crate::check::MAX_DRAFT`] bytes; the check follows the rules of [`crate::destination`].

use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use meshtrace_config::{Config, effective, mode, to_yaml};

use super::shell::{Shell, Visitor};
use super::view::View;
use crate::Console;
use crate::error::{ErrorCode, page};

pub struct ProbeRow {
    test: String,
    ok: bool,
    result: String,
}

pub struct WorkingBlock {
    title: String,
    yaml: String,
}

pub struct Diagnosis {
    message: String,
    probes: Vec<ProbeRow>,
    working: Vec<WorkingBlock>,
}

pub struct CheckResult {
    ok: bool,
    message: String,
    yaml: String,
}

#[derive(Template)]
#[template(path = "tester.html")]
struct TesterPage {
    shell: Shell,
    mode: String,
    effective: String,
    diagnosis: Option<Diagnosis>,
    draft: String,
    result: Option<CheckResult>,
}

fn tester(console: &Console, visitor: &Visitor, draft: Option<String>) -> TesterPage {
    let view = View::parse(None);
    let effective = to_yaml(&effective(&console.config));
    TesterPage {
        shell: Shell::new(
            console,
            visitor,
            &view,
            "Tracing configuration".into(),
            "tracing",
            // The tester is about the configuration, not the mesh: it reads no inventory, so
            // that a refused draft never makes the console call the backend.
            &[],
        ),
        mode: mode(&console.config.tracing),
        draft: draft.unwrap_or_else(|| effective.clone()),
        effective,
        diagnosis: None,
        result: None,
    }
}

pub async fn show(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut tester = tester(&console, &visitor, None);
    let wants_probes = form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "diagnose" && v == "1");
    if wants_probes {
        tester.diagnosis = Some(match crate::check::diagnose_backend(&console).await {
            Ok((d, message)) => Diagnosis {
                message,
                probes: d
                    .probes
                    .iter()
                    .map(|p| ProbeRow {
                        test: p.test.clone(),
                        ok: p.result.is_ok(),
                        result: match &p.result {
                            Ok(r) | Err(r) => r.clone(),
                        },
                    })
                    .collect(),
                working: d
                    .working
                    .iter()
                    .enumerate()
                    .map(|(i, w)| WorkingBlock {
                        title: format!("{}. {}", i.saturating_add(1), w.note),
                        yaml: w.yaml(),
                    })
                    .collect(),
            },
            Err(message) => Diagnosis {
                message,
                probes: Vec::new(),
                working: Vec::new(),
            },
        });
    }
    page(None, tester)
}

pub async fn check(State(console): State<Arc<Console>>, request: Request) -> Response {
    let visitor = Visitor::of(&request);
    let body = match crate::check::read_draft(request).await {
        Ok(body) => body,
        Err(refused) => {
            // The draft is not shown again: it may be anything, of any size.
            let mut tester = tester(&console, &visitor, None);
            tester.result = Some(CheckResult {
                ok: false,
                message: refused.error,
                yaml: String::new(),
            });
            return page(Some(refused.code), tester);
        }
    };
    let draft = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "config")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut tester = tester(&console, &visitor, Some(draft.clone()));
    let outcome = match meshtrace_config::load_str(&draft) {
        Err(problems) => CheckResult {
            ok: false,
            message: format!(
                "The configuration is not valid: {}",
                problems
                    .iter()
                    .filter(|p| p.is_error())
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            yaml: String::new(),
        },
        Ok(loaded) => {
            let yaml = block(&loaded.config);
            match crate::check::try_config(&console, loaded.config.tracing).await {
                Err(refused) => CheckResult {
                    ok: false,
                    message: refused.error,
                    yaml: String::new(),
                },
                Ok(Ok(message)) => CheckResult {
                    ok: true,
                    message,
                    yaml,
                },
                Ok(Err(error)) => CheckResult {
                    ok: false,
                    message: format!("The configuration does not work: {error}"),
                    yaml: String::new(),
                },
            }
        }
    };
    let failed = (!outcome.ok).then_some(ErrorCode::Unprocessable);
    tester.result = Some(outcome);
    page(failed, tester)
}

/// The effective `external_services.tracing` block of a checked configuration (secrets `xxx`).
fn block(config: &Config) -> String {
    to_yaml(&effective(config))
}
