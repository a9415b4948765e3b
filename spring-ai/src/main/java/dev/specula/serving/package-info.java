/**
 * The serving layer: response cache, bulkhead, fallback to plain decoding and metrics,
 * over the engine.
 */
@NullMarked
package dev.specula.serving;

import org.jspecify.annotations.NullMarked;
