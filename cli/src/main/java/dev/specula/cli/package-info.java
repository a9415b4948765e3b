/**
 * The command line: {@code generate} and {@code bench} over the engine alone.
 */
@NullMarked
package dev.specula.cli;

import org.jspecify.annotations.NullMarked;
