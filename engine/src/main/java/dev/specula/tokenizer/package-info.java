/**
 * Tokenizers and chat templates, rendered as transformers renders them.
 */
@NullMarked
package dev.specula.tokenizer;

import org.jspecify.annotations.NullMarked;
