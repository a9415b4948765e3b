/**
 * The Spring AI {@code ChatModel} and its options.
 */
@NullMarked
package dev.specula.chat;

import org.jspecify.annotations.NullMarked;
