/**
 * Constrained decoding: grammars (a JSON Schema, any JSON object, literals and their
 * compositions) compiled to token masks over a vocabulary.
 *
 * <p>
 * Automaton. A {@link dev.specula.grammar.Grammar} is an expression tree over UTF-8 text;
 * a JSON Schema is translated to one keyword by keyword, anything unsupported refused by
 * name. {@link dev.specula.grammar.CompiledGrammar} compiles it to a byte-level pushdown
 * automaton: byte-range edges, splits, rule calls and returns (recursion through
 * {@code $ref} and nested JSON values is a call; stacks are at most 256 frames deep).
 * Characters are their UTF-8 byte sequences, so a multi-byte character split across
 * tokens is followed byte by byte.
 *
 * <p>
 * Snapshots. A parser state is the set of threads (node and stack) the text so far can be
 * in. Stack frames and states are interned and immutable, so a snapshot is a reference
 * and {@link dev.specula.grammar.GrammarMatcher#resetTo} is O(1). Each state memoizes its
 * successor by byte: the automaton is determinized lazily, and checking a token already
 * seen from a state is a few array lookups.
 *
 * <p>
 * Masks. A state's token mask walks the vocabulary's byte trie, skipping the subtree
 * under a refused byte, and accepting whole a subtree whose bytes all lead back to the
 * state (plain characters inside a string). The walk starts from the state's local state
 * (its threads over holes standing for their stacks, as xgrammar splits
 * context-independent tokens from context-dependent ones): tokens that stay above the
 * stacks are decided there, once for every state with those threads (every string's
 * inside is one rule); only the subtrees where a path returns into a hole are walked from
 * the state itself. The mask is cached on the state, as xgrammar's adaptive mask cache
 * does, in the smallest of three forms (bitset, allowed ids, refused ids), so a state met
 * again costs a lookup. Special tokens never match text: one is allowed only where a
 * literal continues with its content. End ids are allowed exactly when the text is
 * complete.
 */
@NullMarked
package dev.specula.grammar;

import org.jspecify.annotations.NullMarked;
