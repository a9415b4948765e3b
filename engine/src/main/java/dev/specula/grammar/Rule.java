package dev.specula.grammar;

import org.jspecify.annotations.Nullable;

/**
 * A named subgrammar entered by {@link Expr.Call}: a {@code $ref} target, one nesting
 * level of any JSON value, a repeated item. Its body is set once, after creation, so that
 * a rule can call itself; identity is equality.
 */
final class Rule {

    private final String name;

    private @Nullable Expr body;

    Rule(String name) {
        this.name = name;
    }

    Rule(String name, Expr body) {
        this.name = name;
        this.body = body;
    }

    Expr body() {
        Expr defined = body;
        if (defined == null) {
            throw new IllegalStateException("Rule " + name + " has no body");
        }
        return defined;
    }

    void define(Expr body) {
        if (this.body != null) {
            throw new IllegalStateException("Rule " + name + " is already defined");
        }
        this.body = body;
    }

    @Override
    public String toString() {
        return name;
    }

}
