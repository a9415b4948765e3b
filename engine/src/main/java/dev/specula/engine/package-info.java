/**
 * The decode loop, continuous batching and the engine's public API: requests, results,
 * statistics.
 */
@NullMarked
package dev.specula.engine;

import org.jspecify.annotations.NullMarked;
