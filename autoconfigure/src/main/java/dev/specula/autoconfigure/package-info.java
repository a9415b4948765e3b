/**
 * Auto-configuration of Specula's Spring AI {@code ChatModel} from {@code specula.*}
 * properties.
 */
@NullMarked
package dev.specula.autoconfigure;

import org.jspecify.annotations.NullMarked;
