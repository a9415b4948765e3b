/**
 * Sampling filters and the lossless acceptance rule (greedy and rejection sampling).
 */
@NullMarked
package dev.specula.sampling;

import org.jspecify.annotations.NullMarked;
