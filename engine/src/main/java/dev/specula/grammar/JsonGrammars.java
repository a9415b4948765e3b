package dev.specula.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * The pieces of JSON text: whitespace, strings (raw characters and escapes; a JSON
 * string's content character by character, so a character class of a pattern becomes the
 * JSON text that writes those characters), numbers, and any value nested to a bounded
 * depth.
 */
final class JsonGrammars {

    /**
     * How deep {@link #anyObject()} and a schema's untyped values nest objects and
     * arrays.
     */
    static final int MAX_NESTING = 64;

    /**
     * Between two JSON tokens: nothing or one space. Compact JSON only: a model may not
     * spend tokens on indentation and newlines (a weak one will, until it runs out of
     * tokens), and every answer is still valid JSON.
     */
    static final Expr WS = Expr.alt(Expr.EMPTY, Expr.literal(" "));

    /**
     * Characters a JSON string holds unescaped: all but controls, quote and backslash.
     */
    private static final CodePointSet RAW = CodePointSet.ALL.minus(CodePointSet.of(0, 0x1F, '"', '"', '\\', '\\'));

    private static final Expr HEX = new Expr.Chars(CodePointSet.of('0', '9', 'a', 'f', 'A', 'F'));

    /** One character of any JSON string: raw, or any escape. */
    static final Expr STRING_CHAR = Expr.alt(new Expr.Chars(RAW), Expr.seq(Expr.literal("\\"),
            Expr.alt(chars("\"\\/bfnrt"), Expr.seq(Expr.literal("u"), HEX, HEX, HEX, HEX))));

    /**
     * Any JSON string, a rule shared by every string of every grammar: its inside has one
     * local state (per stack depth), so one trie walk serves all strings' masks.
     */
    static final Expr STRING = stringRule(0, -1);

    static final Expr NUMBER = PatternParser.parse("-?(0|[1-9][0-9]{0,15})(\\.[0-9]{1,16})?([eE][+-]?[0-9]{1,3})?",
            false, "");

    static final Expr INTEGER = PatternParser.parse("-?(0|[1-9][0-9]{0,15})", false, "");

    static final Expr BOOLEAN = Expr.alt(Expr.literal("true"), Expr.literal("false"));

    static final Expr NULL = Expr.literal("null");

    /** valueRules[d]: any value whose objects and arrays nest at most d levels. */
    private static final Rule[] VALUE_RULES = valueRules();

    private JsonGrammars() {
    }

    private static Expr chars(String members) {
        CodePointSet set = CodePointSet.EMPTY;
        for (int i = 0; i < members.length(); i++) {
            set = set.union(CodePointSet.single(members.charAt(i)));
        }
        return new Expr.Chars(set);
    }

    /**
     * A JSON string of min to max characters (max < 0: unbounded), an escape counting
     * one.
     */
    static Expr string(int min, int max) {
        return (min == 0 && max < 0) ? STRING : stringRule(min, max);
    }

    private static Expr stringRule(int min, int max) {
        Expr body = Expr.seq(Expr.literal("\""), new Expr.Repeat(STRING_CHAR, Expr.EMPTY, min, max),
                Expr.literal("\""));
        return new Expr.Call(new Rule("string", body));
    }

    /**
     * The JSON text of one character of {@code set}: raw where a string may hold it raw,
     * escaped for the quote, the backslash and controls (short escapes where JSON has
     * one, else {@code \}{@code u00XX}).
     */
    static Expr stringChar(CodePointSet set) {
        List<Expr> alternatives = new ArrayList<>();
        CodePointSet raw = set.intersect(RAW);
        if (!raw.isEmpty()) {
            alternatives.add(new Expr.Chars(raw));
        }
        if (set.contains('"')) {
            alternatives.add(Expr.literal("\\\""));
        }
        if (set.contains('\\')) {
            alternatives.add(Expr.literal("\\\\"));
        }
        String shortEscapes = "\bb\ff\nn\rr\tt";
        for (int c = 0; c < 0x20; c++) {
            if (!set.contains(c)) {
                continue;
            }
            int at = shortEscapes.indexOf((char) c);
            if (at >= 0 && at % 2 == 0) {
                alternatives.add(Expr.literal("\\" + shortEscapes.charAt(at + 1)));
            }
            else {
                alternatives.add(Expr.literal(String.format("\\u%04x", c)));
            }
        }
        return alternatives.isEmpty() ? new Expr.Chars(CodePointSet.EMPTY) : new Expr.Alt(alternatives);
    }

    /** A quoted string whose content is {@code content} (JSON text of its characters). */
    static Expr quoted(Expr content) {
        return Expr.seq(Expr.literal("\""), content, Expr.literal("\""));
    }

    /**
     * <code>{</code> members <code>}</code>: each member {@code ws member}, a separator
     * {@code ws ,} between two, {@code ws} before the brace. (One whitespace slot between
     * two tokens, never two.)
     */
    static Expr object(List<Expr> members, List<Boolean> required) {
        List<Expr> spaced = new ArrayList<>();
        for (Expr member : members) {
            spaced.add(Expr.seq(WS, member));
        }
        return Expr.seq(Expr.literal("{"), new Expr.Members(spaced, required, Expr.seq(WS, Expr.literal(","))), WS,
                Expr.literal("}"));
    }

    /** {@code "key" ws : ws value}, the key written as JSON. */
    static Expr member(String key, Expr value) {
        return Expr.seq(Expr.literal(Grammar.quote(key)), WS, Expr.literal(":"), WS, value);
    }

    /** An object with any string keys, each value {@code value}. */
    static Expr map(Expr value) {
        Expr member = Expr.seq(WS, STRING, WS, Expr.literal(":"), WS, value);
        return Expr.seq(Expr.literal("{"), new Expr.Repeat(member, Expr.seq(WS, Expr.literal(",")), 0, -1), WS,
                Expr.literal("}"));
    }

    /** <code>[</code> min to max items <code>]</code>, spaced as {@link #object}. */
    static Expr array(Expr item, int min, int max) {
        return Expr.seq(Expr.literal("["),
                new Expr.Repeat(Expr.seq(WS, item), Expr.seq(WS, Expr.literal(",")), min, max), WS, Expr.literal("]"));
    }

    /** Any JSON value (nested at most {@link #MAX_NESTING} levels). */
    static Expr anyValue() {
        return new Expr.Call(VALUE_RULES[MAX_NESTING]);
    }

    /** Any JSON object (nested at most {@link #MAX_NESTING} levels, itself included). */
    static Expr anyObject() {
        return map(new Expr.Call(VALUE_RULES[MAX_NESTING - 1]));
    }

    private static Rule[] valueRules() {
        Rule[] rules = new Rule[MAX_NESTING + 1];
        Expr scalars = Expr.alt(STRING, NUMBER, BOOLEAN, NULL);
        rules[0] = new Rule("value0", scalars);
        for (int d = 1; d <= MAX_NESTING; d++) {
            Expr inner = new Expr.Call(rules[d - 1]);
            rules[d] = new Rule("value" + d, Expr.alt(map(inner), array(inner, 0, -1), STRING, NUMBER, BOOLEAN, NULL));
        }
        return rules;
    }

}
