//! The served OpenAPI document, completed so that strict validators and client
//! generators accept it and it says everything the server can answer: every
//! response described, every error a problem document, the errors the kit
//! itself answers (token, malformed body, query or path) on each operation they
//! can reach, and the OAuth2 client-credentials scheme Swagger UI fetches
//! tokens with. Also the route table that tells a wrong method (405) from an
//! unknown path (404).

use std::collections::BTreeSet;

use utoipa::{
    PartialSchema,
    openapi::{
        Content, OpenApi, RefOr, ResponseBuilder,
        path::{Operation, ParameterIn, PathItem},
        schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type},
        security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme},
    },
};

use crate::error::FieldError;

/// The security scheme every protected operation names.
const SECURITY_SCHEME: &str = "oauth2";
/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";
const PROBLEM: &str = "Problem";

/// Adds the shared components, fills in what annotations leave out, and
/// returns the routes the document describes.
pub fn complete(api: &mut OpenApi) -> Routes {
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SECURITY_SCHEME,
        SecurityScheme::OAuth2(OAuth2::with_description(
            [Flow::ClientCredentials(ClientCredentials::new(
                "/oauth/token",
                Scopes::new(),
            ))],
            "OAuth2 client credentials: POST /oauth/token with the client's id and \
             secret (HTTP Basic or form fields) returns a bearer token; its roles \
             decide what the client may do.",
        )),
    );
    components
        .schemas
        .insert("FieldError".to_owned(), FieldError::schema());
    components
        .schemas
        .insert(PROBLEM.to_owned(), RefOr::T(problem_schema()));
    let mut templates = Vec::new();
    for (path, item) in &mut api.paths.paths {
        let mut methods = Vec::new();
        for (method, operation) in methods_mut(item) {
            complete_operation(operation);
            methods.push(method);
        }
        templates.push((path.split('/').map(Segment::parse).collect(), methods));
    }
    qualify_operation_ids(api);
    Routes { templates }
}

/// Operation ids are handler names (`list`, `create`), repeated across
/// services; generated clients name methods after them, so each must be
/// unique. They become `{tag}_{handler}` (`customers_lookup`), and a pair that
/// still collides is named after its method and path.
fn qualify_operation_ids(api: &mut OpenApi) {
    let snake = |text: &str| {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut named = Vec::new();
    for (path, item) in &mut api.paths.paths {
        for (method, operation) in methods_mut(item) {
            let handler = operation.operation_id.clone().unwrap_or_default();
            let id = match operation.tags.as_ref().and_then(|tags| tags.first()) {
                Some(tag) => format!("{}_{handler}", snake(tag)),
                None => handler,
            };
            *seen.entry(id.clone()).or_default() += 1;
            named.push((
                id,
                format!(
                    "{}_{}",
                    method.to_ascii_lowercase(),
                    snake(path.trim_matches('/'))
                ),
                operation,
            ));
        }
    }
    for (id, fallback, operation) in named {
        let unique = !id.is_empty() && seen.get(&id) == Some(&1);
        operation.operation_id = Some(if unique { id } else { fallback });
    }
}

/// RFC 9457, with Hotline's stable `code` and the invalid fields.
fn problem_schema() -> Schema {
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    ObjectBuilder::new()
        .description(Some(
            "An RFC 9457 problem document. `code` is stable and machine-readable; \
             further members may carry details of the error.",
        ))
        .property(
            "type",
            text("URI naming the kind of problem")
                .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into()))),
        )
        .required("type")
        .property("title", text("the HTTP status's reason phrase"))
        .required("title")
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(400))
                .maximum(Some(599)),
        )
        .required("status")
        .property("detail", text("what went wrong, for a person"))
        .property(
            "code",
            text("stable machine-readable kind, e.g. customer_not_found"),
        )
        .required("code")
        .property(
            "errors",
            ArrayBuilder::new().items(utoipa::openapi::Ref::from_schema_name("FieldError")),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}

/// Each operation of a path with its method.
fn methods_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

fn complete_operation(operation: &mut Operation) {
    let located = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(
            |parameter| matches!(parameter, RefOr::T(parameter) if parameter.parameter_in == place),
        )
    };
    let mut reachable: BTreeSet<u16> = BTreeSet::from([500]);
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        reachable.insert(401);
    }
    if operation.request_body.is_some() {
        // Malformed JSON, a body too large, not JSON, and values of the wrong type.
        reachable.extend([400, 413, 415, 422]);
    }
    if located(ParameterIn::Query) {
        reachable.insert(400);
    }
    if located(ParameterIn::Path) {
        // A path segment that does not parse names no resource.
        reachable.insert(404);
    }
    let responses = &mut operation.responses.responses;
    for status in reachable {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().build()));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let code = status.parse::<u16>().ok();
        if response.description.is_empty() {
            response.description = code
                .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response")
                .to_owned();
        }
        if code.is_some_and(|code| code >= 400) && response.content.is_empty() {
            response.content.insert(
                PROBLEM_JSON.to_owned(),
                RefOr::T(Content::new(Some(utoipa::openapi::Ref::from_schema_name(
                    PROBLEM,
                )))),
            );
        }
    }
}

/// The documented paths and their methods, to answer a known path asked with
/// an unsupported method with 405 and `Allow` instead of 404. Made by
/// [`complete`].
#[derive(Debug, Default)]
pub struct Routes {
    templates: Vec<(Vec<Segment>, Vec<&'static str>)>,
}

/// One `/`-separated piece of a path template: literal text around at most
/// one `{parameter}` (`{id}`, `{id}:accept`, `tasks`).
#[derive(Debug)]
struct Segment {
    prefix: String,
    /// `Some(suffix)` when the segment holds a parameter.
    suffix: Option<String>,
}

impl Segment {
    fn parse(text: &str) -> Self {
        match (text.find('{'), text.find('}')) {
            (Some(open), Some(close)) if open < close => Self {
                prefix: text[..open].to_owned(),
                suffix: Some(text[close + 1..].to_owned()),
            },
            _ => Self {
                prefix: text.to_owned(),
                suffix: None,
            },
        }
    }

    fn matches(&self, text: &str) -> bool {
        match &self.suffix {
            None => self.prefix == text,
            Some(suffix) => {
                text.len() > self.prefix.len() + suffix.len()
                    && text.starts_with(&self.prefix)
                    && text.ends_with(suffix.as_str())
            }
        }
    }
}

impl Routes {
    /// The methods served at `path`, if a template matches it: those of the
    /// most specific templates, so `/customers/lookup`
    /// serves GET only although `/customers/{id}` matches it too.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let pieces: Vec<&str> = path.split('/').collect();
        // Fewest parameters first, then the most literal text (`{id}:accept`
        // is more specific than `{id}`).
        let specificity = |segments: &[Segment]| {
            let parameters = segments.iter().filter(|s| s.suffix.is_some()).count();
            let literal: usize = segments
                .iter()
                .map(|s| s.prefix.len() + s.suffix.as_ref().map_or(0, String::len))
                .sum();
            (parameters, std::cmp::Reverse(literal))
        };
        let matching: Vec<&(Vec<Segment>, Vec<&'static str>)> = self
            .templates
            .iter()
            .filter(|(segments, _)| {
                segments.len() == pieces.len()
                    && segments
                        .iter()
                        .zip(&pieces)
                        .all(|(segment, piece)| segment.matches(piece))
            })
            .collect();
        let most = matching.iter().map(|(s, _)| specificity(s)).min()?;
        let mut allowed: Vec<&'static str> = Vec::new();
        for (_, methods) in matching.iter().filter(|(s, _)| specificity(s) == most) {
            for method in methods {
                if !allowed.contains(method) {
                    allowed.push(method);
                }
            }
        }
        Some(allowed)
    }
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::{
        PathsBuilder,
        path::{HttpMethod, OperationBuilder, PathItem},
    };

    use super::*;

    #[test]
    fn routes_tell_a_wrong_method_from_an_unknown_path() {
        let mut api = utoipa::openapi::OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path(
                        "/api/v1/tasks/{id}",
                        PathItem::from_http_methods(
                            [HttpMethod::Get, HttpMethod::Delete],
                            OperationBuilder::new(),
                        ),
                    )
                    .path(
                        "/api/v1/tasks/{id}:accept",
                        PathItem::new(HttpMethod::Post, OperationBuilder::new()),
                    ),
            )
            .build();
        let routes = complete(&mut api);
        assert_eq!(
            routes.allowed("/api/v1/tasks/t-1"),
            Some(vec!["GET", "DELETE"])
        );
        // `{id}` takes any segment, as actix's router does, but the more
        // specific template decides.
        assert_eq!(
            routes.allowed("/api/v1/tasks/t-1:accept"),
            Some(vec!["POST"])
        );
        assert_eq!(routes.allowed("/api/v1/tasks"), None);
        assert_eq!(routes.allowed("/api/v1/tasks/"), None);
        assert_eq!(routes.allowed("/api/v1/tasks/t-1/notes"), None);
    }
}
