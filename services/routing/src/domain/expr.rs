//! The target expression language: which agents a queue may offer work to
//! (`skills.broadband >= 50 AND group == "changzhou"`), and which queue an
//! arriving call goes to (`dialled == "96123" AND ivr.menu == "2"`).
//!
//! ```text
//! expr       := or
//! or         := and ("OR" and)*
//! and        := unary ("AND" unary)*
//! unary      := "NOT" unary | "(" expr ")" | "true" | "false" | condition
//! condition  := path op literal | path "IN" "(" literal ("," literal)* ")" | "HAS" path
//! path       := name ("." name)*          e.g. skills.broadband, group, ivr.menu
//! op         := "==" | "!=" | ">=" | "<=" | ">" | "<"
//! literal    := number | "double-quoted string" | 'single-quoted string' | true | false
//! ```
//!
//! Keywords are case-insensitive. A path names zero, one or several values
//! (an agent is in several groups); a comparison holds when any value
//! satisfies it, `!=` when none equals the literal, and a missing value
//! satisfies nothing but `!=`. `HAS path` holds when the path has a value.

use std::fmt;

/// Values a path names on the thing being matched (agent or task).
pub trait Subject {
    fn values(&self, path: &[String]) -> Vec<Value>;
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    /// A JSON scalar as a value (objects and arrays name nothing).
    pub fn from_json(value: &serde_json::Value) -> Vec<Value> {
        match value {
            serde_json::Value::Number(n) => n.as_f64().map(Value::Number).into_iter().collect(),
            serde_json::Value::String(s) => vec![Value::Text(s.clone())],
            serde_json::Value::Bool(b) => vec![Value::Bool(*b)],
            serde_json::Value::Array(items) => items.iter().flat_map(Value::from_json).collect(),
            serde_json::Value::Null | serde_json::Value::Object(_) => Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(bool),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        path: Vec<String>,
        op: Op,
        literal: Value,
    },
    In {
        path: Vec<String>,
        literals: Vec<Value>,
    },
    Has(Vec<String>),
}

/// Why an expression does not parse, and where (a character offset).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {position}")]
pub struct ExprError {
    pub position: usize,
    pub message: String,
}

/// Longest expression accepted, in characters.
pub const MAX_LENGTH: usize = 2000;
const MAX_DEPTH: usize = 32;

pub fn parse(source: &str) -> Result<Expr, ExprError> {
    if source.chars().count() > MAX_LENGTH {
        return Err(ExprError {
            position: MAX_LENGTH,
            message: format!("longer than {MAX_LENGTH} characters"),
        });
    }
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        end: source.chars().count(),
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some((position, token)) => Err(ExprError {
            position,
            message: format!("unexpected {token}"),
        }),
    }
}

impl Expr {
    pub fn matches(&self, subject: &dyn Subject) -> bool {
        match self {
            Self::Const(value) => *value,
            Self::And(items) => items.iter().all(|item| item.matches(subject)),
            Self::Or(items) => items.iter().any(|item| item.matches(subject)),
            Self::Not(item) => !item.matches(subject),
            Self::Compare { path, op, literal } => {
                let values = subject.values(path);
                match op {
                    Op::Ne => !values.iter().any(|value| equal(value, literal)),
                    Op::Eq => values.iter().any(|value| equal(value, literal)),
                    Op::Ge | Op::Le | Op::Gt | Op::Lt => {
                        values.iter().any(|value| ordered(value, literal, *op))
                    }
                }
            }
            Self::In { path, literals } => subject
                .values(path)
                .iter()
                .any(|value| literals.iter().any(|literal| equal(value, literal))),
            Self::Has(path) => !subject.values(path).is_empty(),
        }
    }

    /// The skills this expression compares, in order of appearance (the
    /// best-skill strategy ranks by the first one).
    pub fn skills(&self) -> Vec<String> {
        let mut skills = Vec::new();
        self.collect_skills(&mut skills);
        skills
    }

    fn collect_skills(&self, skills: &mut Vec<String>) {
        match self {
            Self::Const(_) => {}
            Self::And(items) | Self::Or(items) => {
                for item in items {
                    item.collect_skills(skills);
                }
            }
            Self::Not(item) => item.collect_skills(skills),
            Self::Compare { path, .. } | Self::In { path, .. } | Self::Has(path) => {
                if let [head, skill] = path.as_slice()
                    && head == "skills"
                    && !skills.contains(skill)
                {
                    skills.push(skill.clone());
                }
            }
        }
    }
}

fn equal(value: &Value, literal: &Value) -> bool {
    match (value, literal) {
        (Value::Number(a), Value::Number(b)) => (a - b).abs() < f64::EPSILON,
        (Value::Text(a), Value::Text(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Text(a), Value::Number(b)) => {
            a.parse::<f64>().is_ok_and(|a| (a - b).abs() < f64::EPSILON)
        }
        (Value::Number(_) | Value::Bool(_), Value::Text(_))
        | (Value::Number(_), Value::Bool(_))
        | (Value::Bool(_), Value::Number(_))
        | (Value::Text(_), Value::Bool(_)) => false,
    }
}

fn ordered(value: &Value, literal: &Value, op: Op) -> bool {
    let ordering = match (value, literal) {
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
        (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
        (Value::Text(a), Value::Number(b)) => a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b)),
        (Value::Number(_) | Value::Bool(_), Value::Text(_))
        | (Value::Bool(_), Value::Bool(_) | Value::Number(_))
        | (Value::Number(_) | Value::Text(_), Value::Bool(_)) => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        Op::Ge => ordering.is_ge(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Lt => ordering.is_lt(),
        Op::Eq | Op::Ne => false,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Name(String),
    Text(String),
    Number(f64),
    Op(Op),
    Open,
    Close,
    Comma,
    Dot,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "`{name}`"),
            Self::Text(text) => write!(f, "string {text:?}"),
            Self::Number(number) => write!(f, "number {number}"),
            Self::Op(op) => write!(f, "operator {}", op_text(*op)),
            Self::Open => f.write_str("`(`"),
            Self::Close => f.write_str("`)`"),
            Self::Comma => f.write_str("`,`"),
            Self::Dot => f.write_str("`.`"),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Ge => ">=",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Lt => "<",
    }
}

fn tokenize(source: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |position: usize, message: &str| ExprError {
        position,
        message: message.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((start, Token::Open));
                i += 1;
            }
            ')' => {
                tokens.push((start, Token::Close));
                i += 1;
            }
            ',' => {
                tokens.push((start, Token::Comma));
                i += 1;
            }
            '.' => {
                tokens.push((start, Token::Dot));
                i += 1;
            }
            '=' | '!' | '>' | '<' => {
                let next = chars.get(i + 1).copied();
                let (op, width) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', _) => (Op::Gt, 1),
                    ('<', _) => (Op::Lt, 1),
                    ('=', _) => return Err(error(start, "use `==` to compare")),
                    _ => return Err(error(start, "use `!=` or NOT")),
                };
                tokens.push((start, Token::Op(op)));
                i += width;
            }
            '"' | '\'' => {
                let quote = c;
                i += 1;
                let mut text = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(error(start, "unterminated string")),
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(escaped) => text.push(*escaped),
                                None => return Err(error(start, "unterminated string")),
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push((start, Token::Text(text)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let number = text
                    .parse::<f64>()
                    .map_err(|_| error(start, &format!("{text} is not a number")))?;
                tokens.push((start, Token::Number(number)));
            }
            c if c.is_alphanumeric() || c == '_' => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                {
                    i += 1;
                }
                tokens.push((start, Token::Name(chars[start..i].iter().collect())));
            }
            other => return Err(error(start, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(p, t)| (*p, t))
    }

    fn bump(&mut self) -> Option<(usize, Token)> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |(position, _)| position)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            position: self.position(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some((_, Token::Name(name))) if name.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut items = vec![self.unary()?];
        while self.keyword("and") {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let expr = self.unary_inner();
        self.depth -= 1;
        expr
    }

    fn unary_inner(&mut self) -> Result<Expr, ExprError> {
        if self.keyword("not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.keyword("has") {
            self.bump();
            return Ok(Expr::Has(self.path()?));
        }
        if self.keyword("true") || self.keyword("false") {
            let value = self.keyword("true");
            self.bump();
            return Ok(Expr::Const(value));
        }
        match self.peek() {
            Some((_, Token::Open)) => {
                self.bump();
                let expr = self.or()?;
                match self.bump() {
                    Some((_, Token::Close)) => Ok(expr),
                    _ => self.fail("expected `)`"),
                }
            }
            Some((_, Token::Name(_))) => self.condition(),
            Some((_, token)) => {
                let message = format!("expected a condition, found {token}");
                self.fail(message)
            }
            None => self.fail("expected a condition, found the end"),
        }
    }

    fn path(&mut self) -> Result<Vec<String>, ExprError> {
        let mut path = Vec::new();
        loop {
            match self.bump() {
                Some((_, Token::Name(name))) => path.push(name),
                _ => {
                    self.next -= 1;
                    return self.fail("expected a name such as skills.broadband or group");
                }
            }
            if matches!(self.peek(), Some((_, Token::Dot))) {
                self.bump();
            } else {
                return Ok(path);
            }
        }
    }

    fn literal(&mut self) -> Result<Value, ExprError> {
        match self.bump() {
            Some((_, Token::Number(number))) => Ok(Value::Number(number)),
            Some((_, Token::Text(text))) => Ok(Value::Text(text)),
            Some((_, Token::Name(name))) if name.eq_ignore_ascii_case("true") => {
                Ok(Value::Bool(true))
            }
            Some((_, Token::Name(name))) if name.eq_ignore_ascii_case("false") => {
                Ok(Value::Bool(false))
            }
            Some((position, token)) => Err(ExprError {
                position,
                message: format!("expected a number or a quoted string, found {token}"),
            }),
            None => self.fail("expected a number or a quoted string, found the end"),
        }
    }

    fn condition(&mut self) -> Result<Expr, ExprError> {
        let path = self.path()?;
        if self.keyword("in") {
            self.bump();
            if !matches!(self.bump(), Some((_, Token::Open))) {
                self.next -= 1;
                return self.fail("expected `(` after IN");
            }
            let mut literals = vec![self.literal()?];
            loop {
                match self.bump() {
                    Some((_, Token::Comma)) => literals.push(self.literal()?),
                    Some((_, Token::Close)) => break,
                    _ => {
                        self.next -= 1;
                        return self.fail("expected `,` or `)`");
                    }
                }
            }
            return Ok(Expr::In { path, literals });
        }
        let op = match self.bump() {
            Some((_, Token::Op(op))) => op,
            _ => {
                self.next -= 1;
                return self.fail("expected a comparison (==, !=, >=, <=, >, <) or IN");
            }
        };
        let literal = self.literal()?;
        Ok(Expr::Compare { path, op, literal })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Agent(HashMap<&'static str, Vec<Value>>);

    impl Subject for Agent {
        fn values(&self, path: &[String]) -> Vec<Value> {
            self.0
                .get(path.join(".").as_str())
                .cloned()
                .unwrap_or_default()
        }
    }

    fn agent() -> Agent {
        Agent(HashMap::from([
            ("skills.broadband", vec![Value::Number(60.0)]),
            ("skills.tv", vec![Value::Number(20.0)]),
            (
                "group",
                vec![Value::Text("changzhou".into()), Value::Text("night".into())],
            ),
        ]))
    }

    fn holds(source: &str) -> bool {
        parse(source)
            .unwrap_or_else(|e| panic!("{source}: {e}"))
            .matches(&agent())
    }

    #[test]
    fn conditions_combine_as_written() {
        assert!(holds(r#"skills.broadband >= 50 AND group == "changzhou""#));
        assert!(!holds(r#"skills.broadband >= 50 AND group == "wuxi""#));
        assert!(holds(r#"skills.tv > 50 or group == 'night'"#));
        assert!(holds("NOT skills.tv >= 50"));
        assert!(holds(
            "(skills.tv >= 50 OR skills.broadband >= 50) AND HAS skills.tv"
        ));
        assert!(holds(r#"group IN ("wuxi", "changzhou")"#));
        assert!(holds(r#"group != "wuxi""#));
        assert!(!holds(r#"group != "night""#));
        assert!(!holds("skills.mobile >= 0"));
        assert!(holds("true"));
    }

    #[test]
    fn malformed_expressions_say_where() {
        for (source, position) in [
            ("skills.broadband >= ", 20),
            ("skills.broadband = 50", 17),
            ("skills.broadband >= 50 AND", 26),
            ("(group == \"a\"", 13),
            ("group == \"a", 9),
            ("group == \"a\" group", 13),
            ("group # 1", 6),
        ] {
            let error = parse(source)
                .err()
                .unwrap_or_else(|| panic!("{source} parsed"));
            assert_eq!(error.position, position, "{source}: {error}");
        }
        assert!(parse(&"(".repeat(40)).is_err());
        assert!(parse(&"x == 1 OR ".repeat(300)).is_err());
    }

    #[test]
    fn the_first_skill_named_leads() {
        let expr = parse("skills.tv >= 1 AND (skills.broadband > 2 OR skills.tv < 9)").unwrap();
        assert_eq!(expr.skills(), ["tv", "broadband"]);
    }
}
