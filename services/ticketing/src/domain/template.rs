//! SMS templates: `{placeholder}`s filled from the order, and a description
//! shortened with `…` until the message fits its parts.

use super::sms_text;

pub const PLACEHOLDERS: [&str; 9] = [
    "number",
    "priority",
    "category",
    "description",
    "address",
    "contact",
    "phone",
    "result",
    "error",
];

/// The first placeholder `template` uses that isn't one of [`PLACEHOLDERS`].
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Ok(());
        };
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Err(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// `template` with each `{name}` of `values` replaced (absent ones empty).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for name in PLACEHOLDERS {
        let value = values
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| *value);
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// Renders `template`, shortening the `description` (with `…`) until the
/// text takes at most `max_parts` parts; `None` when even without one it doesn't.
pub fn render_fitting(template: &str, values: &[(&str, &str)], max_parts: usize) -> Option<String> {
    let fits = |text: &str| sms_text::split(text).parts.len() <= max_parts;
    let full = render(template, values);
    if fits(&full) {
        return Some(full);
    }
    let description: Vec<char> = values
        .iter()
        .find(|(key, _)| *key == "description")
        .map(|(_, value)| value.chars().collect())
        .unwrap_or_default();
    let with = |keep: usize| {
        let mut short: String = description[..keep].iter().collect();
        short.push('…');
        let values: Vec<(&str, &str)> = values
            .iter()
            .map(|(key, value)| {
                if *key == "description" {
                    (*key, short.as_str())
                } else {
                    (*key, *value)
                }
            })
            .collect();
        render(template, &values)
    };
    // The longest prefix that fits, found by halving.
    let (mut low, mut high) = (0, description.len());
    if !fits(&with(0)) {
        return None;
    }
    while low < high {
        let middle = (low + high).div_ceil(2);
        if fits(&with(middle)) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Some(with(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_refused() {
        assert_eq!(
            render(
                "工单 {number}：{description}{error}",
                &[("number", "WO-1"), ("description", "无信号")]
            ),
            "工单 WO-1：无信号"
        );
        assert_eq!(check("工单 {number} {result}"), Ok(()));
        assert_eq!(check("工单 {numero}"), Err("numero".to_owned()));
    }

    #[test]
    fn a_long_description_is_shortened_to_fit() {
        let description = "信号".repeat(300);
        let values = [
            ("number", "WO-20261201-000001"),
            ("description", description.as_str()),
        ];
        let text = render_fitting("工单 {number}：{description}", &values, 2).unwrap();
        assert!(text.ends_with('…'));
        assert_eq!(sms_text::split(&text).parts.len(), 2);
        // One more character would not fit.
        let kept = text.chars().count() - "工单 WO-20261201-000001：…".chars().count();
        let longer = format!(
            "工单 WO-20261201-000001：{}…",
            &description.chars().take(kept + 1).collect::<String>()
        );
        assert_eq!(sms_text::split(&longer).parts.len(), 3);
        let short = render_fitting("工单 {number}", &values, 1).unwrap();
        assert_eq!(short, "工单 WO-20261201-000001");
        assert_eq!(render_fitting(&"长".repeat(200), &values, 1), None);
    }
}
