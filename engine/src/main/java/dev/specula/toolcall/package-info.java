/**
 * Tool calls in model output: the formats chat templates teach models (Hermes/Qwen, Llama
 * 3.x JSON, Mistral), parsing a finished output, filtering a stream so call markup never
 * leaks as text, and the syntax a grammar needs to force a call.
 */
@NullMarked
package dev.specula.toolcall;

import org.jspecify.annotations.NullMarked;
