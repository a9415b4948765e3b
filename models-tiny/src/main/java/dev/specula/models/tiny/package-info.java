/**
 * The embedded draft/target pair, extracted from the classpath.
 */
@NullMarked
package dev.specula.models.tiny;

import org.jspecify.annotations.NullMarked;
