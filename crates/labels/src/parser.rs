//! The string form of a label selector: upstream's lexer and
//! recursive-descent parser (`labels.Parse`), with its corner cases and its
//! error messages.
//!
//! ```text
//! <selector>     ::= <requirement> | <requirement> "," <selector>
//! <requirement>  ::= [!] KEY [ <set-based> | <exact-match> | <comparison> ]
//! <set-based>    ::= ("in" | "notin") "(" <values> ")"
//! <values>       ::= VALUE | VALUE "," <values>
//! <exact-match>  ::= ("=" | "==" | "!=") VALUE
//! <comparison>   ::= (">" | "<") INTEGER
//! ```
//!
//! Whitespace (space, tab, CR, LF) separates tokens and is otherwise
//! ignored. The empty string is the selector that matches everything.
//! Corner cases kept from upstream: `x=` has the empty value; `x in ()` and
//! `x in (a,)` contain the empty value; `in` and `notin` are plain words
//! where a key or a value is expected (`in in (notin)`); `!x=a` is an
//! error after the requirement `!x`; a NUL byte ends the token it is in, and
//! ends the input where a token would start.

use crate::requirement::{Operator, Requirement, RequirementError, go_quote};
use crate::validation::is_qualified_name;

/// Why a string is not a label selector. Each variant displays as
/// upstream's `labels.Parse` error, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A token where the grammar expects something else.
    #[error(
        "{}found '{found}'{} {}",
        if expected.in_requirement() { "unable to parse requirement: " } else { "" },
        if *expected == Expected::OpenParen { "" } else { "," },
        expected.text()
    )]
    Unexpected {
        /// The token found, as written (empty at the end of the input).
        found: String,
        /// What the grammar expected there.
        expected: Expected,
    },
    /// A key is not a qualified name.
    #[error("unable to parse requirement: <nil>: Invalid value: {}: {}", go_quote(key), messages.join("; "))]
    InvalidKey {
        /// The offending key.
        key: String,
        /// What is wrong with it, from [`is_qualified_name`].
        messages: Vec<String>,
    },
    /// A well-formed requirement with invalid values (a value that is not a
    /// label value, or a `>`/`<` value that is not an integer).
    #[error("unable to parse requirement: {0}")]
    Requirement(#[from] RequirementError),
}

/// What the parser expected where it found something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A requirement or the end, at the start of the input.
    RequirementOrEnd,
    /// A requirement after a comma.
    IdentifierAfterComma,
    /// A comma or the end, after a requirement.
    CommaOrEnd,
    /// A key.
    Identifier,
    /// An operator after a key.
    Operator,
    /// `(` after `in` / `notin`.
    OpenParen,
    /// The first value, a comma or `)` after `(`.
    ValueCommaOrCloseParen,
    /// A comma or `)` after a value.
    CommaOrCloseParen,
    /// A value or a comma in a value list.
    CommaOrIdentifier,
    /// `)` to close a value list.
    CloseParen,
}

impl Expected {
    /// Whether upstream reports this inside a requirement (its message then
    /// starts with "unable to parse requirement: ").
    fn in_requirement(self) -> bool {
        !matches!(
            self,
            Self::RequirementOrEnd | Self::IdentifierAfterComma | Self::CommaOrEnd
        )
    }

    /// Upstream's words for it.
    fn text(self) -> &'static str {
        match self {
            Self::RequirementOrEnd => "expected: !, identifier, or 'end of string'",
            Self::IdentifierAfterComma => "expected: identifier after ','",
            Self::CommaOrEnd => "expected: ',' or 'end of string'",
            Self::Identifier => "expected: identifier",
            Self::Operator => "expected: in, notin, =, ==, !=, gt, lt",
            Self::OpenParen => "expected: '('",
            Self::ValueCommaOrCloseParen => "expected: ',', ')' or identifier",
            Self::CommaOrCloseParen => "expected: ',' or ')'",
            Self::CommaOrIdentifier => "expected: ',', or identifier",
            Self::CloseParen => "expected: ')'",
        }
    }
}

/// Parses the string form into requirements, sorted by key (upstream's
/// `ParseToRequirements`). [`Selector::parse`](crate::Selector::parse) is
/// the usual entry point.
pub fn parse_requirements(input: &str) -> Result<Vec<Requirement>, ParseError> {
    let mut requirements = Parser::new(input).parse()?;
    requirements.sort_by(|a, b| a.key().cmp(b.key()));
    Ok(requirements)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    End,
    Identifier,
    In,
    NotIn,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
    OpenParen,
    CloseParen,
    Comma,
}

/// A token and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item<'a> {
    token: Token,
    literal: &'a str,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn operator_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::CloseParen,
        "," => Token::Comma,
        "!" => Token::Bang,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::Greater,
        "<" => Token::Less,
        "!=" => Token::NotEquals,
        "(" => Token::OpenParen,
        _ => return None,
    })
}

/// Upstream's lexer, byte by byte. `read` yields 0 at the end of the input
/// without moving, and yields (and steps over) a NUL byte as if it were the
/// end: that is how upstream treats NUL.
struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.input.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    /// Steps back over the byte just read; only called after `read` returned
    /// a non-zero byte, so `pos` is at least 1.
    fn unread(&mut self) {
        self.pos -= 1;
    }

    fn lex(&mut self) -> Item<'a> {
        let mut b = self.read();
        while is_whitespace(b) {
            b = self.read();
        }
        if b == 0 {
            return Item {
                token: Token::End,
                literal: "",
            };
        }
        self.unread();
        if is_special(b) { self.operator() } else { self.word() }
    }

    /// The longest run of special characters that is a token.
    fn operator(&mut self) -> Item<'a> {
        let start = self.pos;
        // Every single special character is a token, so after the first
        // byte `longest` is set.
        let mut longest = None;
        loop {
            let b = self.read();
            if b == 0 {
                break;
            }
            if !is_special(b) {
                self.unread();
                break;
            }
            // Special characters are ASCII, so `pos` is a char boundary.
            let text = &self.input[start..self.pos];
            match operator_token(text) {
                Some(token) => longest = Some(Item { token, literal: text }),
                None if longest.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        longest.unwrap_or(Item {
            token: Token::End,
            literal: "",
        })
    }

    /// An identifier or the keywords `in` / `notin`.
    fn word(&mut self) -> Item<'a> {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let b = self.read();
            if b == 0 {
                break before;
            }
            if is_special(b) || is_whitespace(b) {
                self.unread();
                break before;
            }
        };
        // `end` is at an ASCII byte or at the end: a char boundary.
        let literal = &self.input[start..end];
        let token = match literal {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier,
        };
        Item { token, literal }
    }
}

/// Whether `in` / `notin` are keywords (after a key) or plain words (where a
/// key or value is expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    /// Every token of the input; the last one, and only the last, is `End`.
    items: Vec<Item<'a>>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        let mut lexer = Lexer { input, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.token == Token::End {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> Item<'a> {
        // The parser stops at `End`, so `position` stays in range; clamp
        // anyway so that a logic error cannot panic.
        let mut item = self.items[self.position.min(self.items.len() - 1)];
        if context == Context::Values && matches!(item.token, Token::In | Token::NotIn) {
            item.token = Token::Identifier;
        }
        item
    }

    fn consume(&mut self, context: Context) -> Item<'a> {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn unexpected<T>(found: Item<'_>, expected: Expected) -> Result<T, ParseError> {
        Err(ParseError::Unexpected {
            found: found.literal.to_owned(),
            expected,
        })
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, ParseError> {
        let mut requirements = Vec::new();
        loop {
            let item = self.lookahead(Context::Values);
            match item.token {
                Token::End => return Ok(requirements),
                Token::Identifier | Token::Bang => {}
                _ => return Self::unexpected(item, Expected::RequirementOrEnd),
            }
            requirements.push(self.requirement()?);
            let after = self.consume(Context::Values);
            match after.token {
                Token::End => return Ok(requirements),
                Token::Comma => {
                    let next = self.lookahead(Context::Values);
                    if !matches!(next.token, Token::Identifier | Token::Bang) {
                        return Self::unexpected(next, Expected::IdentifierAfterComma);
                    }
                }
                _ => return Self::unexpected(after, Expected::CommaOrEnd),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, ParseError> {
        let mut item = self.consume(Context::Values);
        let negated = item.token == Token::Bang;
        if negated {
            item = self.consume(Context::Values);
        }
        if item.token != Token::Identifier {
            return Self::unexpected(item, Expected::Identifier);
        }
        let key = item.literal;
        let messages = is_qualified_name(key);
        if !messages.is_empty() {
            return Err(ParseError::InvalidKey {
                key: key.to_owned(),
                messages,
            });
        }
        let next = self.lookahead(Context::Values).token;
        if negated {
            // `!x=a` ends the requirement here; the caller then finds '='.
            return Ok(Requirement::new(key, Operator::DoesNotExist, Vec::<String>::new())?);
        }
        if matches!(next, Token::End | Token::Comma) {
            return Ok(Requirement::new(key, Operator::Exists, Vec::<String>::new())?);
        }
        let item = self.consume(Context::KeyAndOperator);
        let operator = match item.token {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::Greater => Operator::GreaterThan,
            Token::Less => Operator::LessThan,
            _ => return Self::unexpected(item, Expected::Operator),
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        Ok(Requirement::new(key, operator, values)?)
    }

    /// `( values )`; `()` is the single empty value.
    fn value_set(&mut self) -> Result<Vec<&'a str>, ParseError> {
        let open = self.consume(Context::Values);
        if open.token != Token::OpenParen {
            return Self::unexpected(open, Expected::OpenParen);
        }
        let first = self.lookahead(Context::Values);
        match first.token {
            Token::Identifier | Token::Comma => {
                let values = self.value_list()?;
                if self.consume(Context::Values).token != Token::CloseParen {
                    // Unreachable: `value_list` returns only before ')'.
                    // Upstream reports the first token of the list here.
                    return Self::unexpected(first, Expected::CloseParen);
                }
                Ok(values)
            }
            Token::CloseParen => {
                self.consume(Context::Values);
                Ok(vec![""])
            }
            _ => Self::unexpected(first, Expected::ValueCommaOrCloseParen),
        }
    }

    /// Comma-separated values, any of them empty, up to (not including) ')'.
    fn value_list(&mut self) -> Result<Vec<&'a str>, ParseError> {
        let mut values = Vec::new();
        loop {
            let item = self.consume(Context::Values);
            match item.token {
                Token::Identifier => {
                    values.push(item.literal);
                    let next = self.lookahead(Context::Values);
                    match next.token {
                        Token::Comma => {}
                        Token::CloseParen => return Ok(values),
                        _ => return Self::unexpected(next, Expected::CommaOrCloseParen),
                    }
                }
                Token::Comma => {
                    // `(,`, `,,` and `,)` stand for empty values.
                    if values.is_empty() {
                        values.push("");
                    }
                    match self.lookahead(Context::Values).token {
                        Token::CloseParen => {
                            values.push("");
                            return Ok(values);
                        }
                        Token::Comma => values.push(""),
                        _ => {}
                    }
                }
                _ => return Self::unexpected(item, Expected::CommaOrIdentifier),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing is the empty
    /// value.
    fn exact_value(&mut self) -> Result<&'a str, ParseError> {
        if matches!(self.lookahead(Context::Values).token, Token::End | Token::Comma) {
            return Ok("");
        }
        let item = self.consume(Context::Values);
        if item.token == Token::Identifier {
            Ok(item.literal)
        } else {
            Self::unexpected(item, Expected::Identifier)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &str) -> Vec<Token> {
        Parser::new(input).items.iter().map(|item| item.token).collect()
    }

    #[test]
    fn lexer_returns_the_longest_token_with_its_text() {
        let cases = [
            ("", Token::End),
            (",", Token::Comma),
            ("notin", Token::NotIn),
            ("in", Token::In),
            ("=", Token::Equals),
            ("==", Token::DoubleEquals),
            (">", Token::Greater),
            ("<", Token::Less),
            ("!", Token::Bang),
            ("!=", Token::NotEquals),
            ("(", Token::OpenParen),
            (")", Token::CloseParen),
            // Characters that are not special are part of an identifier.
            ("~", Token::Identifier),
            ("||", Token::Identifier),
        ];
        for (input, token) in cases {
            let item = Lexer { input, pos: 0 }.lex();
            assert_eq!(item, Item { token, literal: input }, "{input:?}");
        }
    }

    #[test]
    fn lexer_splits_sequences_as_upstream() {
        use Token::*;
        let cases: &[(&str, &[Token])] = &[
            (
                "key in ( value )",
                &[Identifier, In, OpenParen, Identifier, CloseParen, End],
            ),
            (
                "key notin ( value )",
                &[Identifier, NotIn, OpenParen, Identifier, CloseParen, End],
            ),
            (
                "key in ( value1, value2 )",
                &[
                    Identifier, In, OpenParen, Identifier, Comma, Identifier, CloseParen, End,
                ],
            ),
            ("key", &[Identifier, End]),
            ("!key", &[Bang, Identifier, End]),
            ("()", &[OpenParen, CloseParen, End]),
            ("", &[End]),
            (
                "x in (),y",
                &[Identifier, In, OpenParen, CloseParen, Comma, Identifier, End],
            ),
            (
                "== != (), = notin",
                &[
                    DoubleEquals,
                    NotEquals,
                    OpenParen,
                    CloseParen,
                    Comma,
                    Equals,
                    NotIn,
                    End,
                ],
            ),
            ("key>2", &[Identifier, Greater, Identifier, End]),
            ("key<1", &[Identifier, Less, Identifier, End]),
            ("a!==b", &[Identifier, NotEquals, Equals, Identifier, End]),
            ("a\u{a0}b", &[Identifier, End]),
        ];
        for (input, want) in cases {
            assert_eq!(tokens(input), *want, "{input:?}");
        }
    }

    #[test]
    fn a_nul_byte_ends_a_token_and_ends_the_input_where_a_token_would_start() {
        use Token::*;
        assert_eq!(tokens("a\0b"), [Identifier, Identifier, End]);
        assert_eq!(tokens("a \0b"), [Identifier, End]);
        assert_eq!(tokens("!\0="), [Bang, Equals, End]);
        assert!(parse_requirements("x=a \0 garbage").is_ok());
    }

    #[test]
    fn errors_read_as_upstreams() {
        let cases = [
            ("x=a,", "found '', expected: identifier after ','"),
            (",x", "found ',', expected: !, identifier, or 'end of string'"),
            ("x=a)", "found ')', expected: ',' or 'end of string'"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            (
                "x y",
                "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("x in a", "unable to parse requirement: found 'a' expected: '('"),
            ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
            (
                "x in (a b)",
                "unable to parse requirement: found 'b', expected: ',' or ')'",
            ),
            (
                "x in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "x in (a,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier",
            ),
            ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
            ("!", "unable to parse requirement: found '', expected: identifier"),
            (
                "x<a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": \
                 for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            (
                "a/b/c",
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist \
                 of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
                 character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
                 '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')",
            ),
        ];
        for (input, message) in cases {
            let error = parse_requirements(input).unwrap_err();
            assert_eq!(error.to_string(), message, "{input:?}");
        }
        assert!(matches!(
            parse_requirements("x=-a"),
            Err(ParseError::Requirement(RequirementError::InvalidValue { .. }))
        ));
    }
}
