/**
 * Actuator support: the health indicator and the {@code /actuator/specula} endpoint.
 */
@NullMarked
package dev.specula.autoconfigure.actuate;

import org.jspecify.annotations.NullMarked;
