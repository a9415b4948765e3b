/**
 * The OpenAI-compatible gateway over Specula's {@code ChatModel}.
 */
@NullMarked
package dev.specula.sample;

import org.jspecify.annotations.NullMarked;
