/**
 * Proposers of draft tokens that need no model: prompt lookup, suffix lookup, and the
 * choice of proposer a request makes ({@link dev.specula.proposer.ProposerKind}).
 */
@NullMarked
package dev.specula.proposer;

import org.jspecify.annotations.NullMarked;
