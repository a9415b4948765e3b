/**
 * Speculation policies: how many tokens to draft each round, selected by name.
 */
@NullMarked
package dev.specula.policy;

import org.jspecify.annotations.NullMarked;
