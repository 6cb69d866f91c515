//! What a technician may answer by SMS: `ACCEPT <no>`, `DONE <no> <code>`,
//! `DECLINE <no> <reason>`, in any case, with full-width spaces, or with the
//! Chinese verbs 接单, 完成 and 拒单 (also written straight before the number).

use super::number;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Accept { number: String },
    Done { number: String, code: String },
    Decline { number: String, reason: String },
}

impl Command {
    pub fn number(&self) -> &str {
        match self {
            Self::Accept { number } | Self::Done { number, .. } | Self::Decline { number, .. } => {
                number
            }
        }
    }
}

/// Why a text is not a command; the reply tells the technician.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    UnknownVerb,
    NoNumber,
    NoCode,
    NoReason,
}

impl Unreadable {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownVerb => "unknown_command",
            Self::NoNumber => "no_order_number",
            Self::NoCode => "no_resolution_code",
            Self::NoReason => "no_reason",
        }
    }
}

#[derive(Clone, Copy)]
enum Verb {
    Accept,
    Done,
    Decline,
}

const VERBS: [(&str, Verb); 6] = [
    ("ACCEPT", Verb::Accept),
    ("DONE", Verb::Done),
    ("DECLINE", Verb::Decline),
    ("接单", Verb::Accept),
    ("完成", Verb::Done),
    ("拒单", Verb::Decline),
];

pub fn parse(text: &str) -> Result<Command, Unreadable> {
    let text = text.replace('\u{3000}', " ");
    let text = text.trim();
    let (verb, rest) = VERBS
        .iter()
        .find_map(|(word, verb)| {
            let head = text.get(..word.len())?;
            let rest = &text[word.len()..];
            // A Latin verb must end at a space; a Chinese one may touch the number.
            let ends = rest.is_empty() || rest.starts_with(char::is_whitespace) || !word.is_ascii();
            (head.eq_ignore_ascii_case(word) && ends).then_some((*verb, rest))
        })
        .ok_or(Unreadable::UnknownVerb)?;
    let mut words = rest.split_whitespace();
    let number = words
        .next()
        .and_then(number::normalize)
        .ok_or(Unreadable::NoNumber)?;
    let remainder: Vec<&str> = words.collect();
    match verb {
        Verb::Accept => Ok(Command::Accept { number }),
        Verb::Done => remainder
            .first()
            .map(|code| Command::Done {
                number: number.clone(),
                code: code.to_ascii_lowercase(),
            })
            .ok_or(Unreadable::NoCode),
        Verb::Decline if remainder.is_empty() => Err(Unreadable::NoReason),
        Verb::Decline => Ok(Command::Decline {
            number,
            reason: remainder.join(" "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: &str = "WO-20261201-000007";

    #[test]
    fn the_three_commands_in_their_spellings() {
        let accept = Command::Accept { number: NO.into() };
        assert_eq!(parse("ACCEPT WO-20261201-000007"), Ok(accept.clone()));
        assert_eq!(parse("  accept wo20261201000007 "), Ok(accept.clone()));
        assert_eq!(parse("接单\u{3000}20261201-000007"), Ok(accept.clone()));
        assert_eq!(parse("接单WO-20261201-000007"), Ok(accept));
        assert_eq!(
            parse("Done WO-20261201-000007 FIXED thanks"),
            Ok(Command::Done {
                number: NO.into(),
                code: "fixed".into()
            })
        );
        assert_eq!(
            parse("拒单 WO-20261201-000007 不在 本区"),
            Ok(Command::Decline {
                number: NO.into(),
                reason: "不在 本区".into()
            })
        );
    }

    #[test]
    fn what_is_missing_is_named() {
        assert_eq!(parse("hello"), Err(Unreadable::UnknownVerb));
        assert_eq!(
            parse("ACCEPTED WO-20261201-000007"),
            Err(Unreadable::UnknownVerb)
        );
        assert_eq!(parse(""), Err(Unreadable::UnknownVerb));
        assert_eq!(parse("ACCEPT"), Err(Unreadable::NoNumber));
        assert_eq!(parse("ACCEPT 12345"), Err(Unreadable::NoNumber));
        assert_eq!(parse("DONE WO-20261201-000007"), Err(Unreadable::NoCode));
        assert_eq!(
            parse("DECLINE WO-20261201-000007"),
            Err(Unreadable::NoReason)
        );
    }
}
