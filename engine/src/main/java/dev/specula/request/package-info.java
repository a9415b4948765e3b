/**
 * What every layer says about a caller's mistake: {@link InvalidRequestException}, naming
 * the field. The lowest package of the engine, so sampling, policies and the loop can all
 * throw it.
 */
@NullMarked
package dev.specula.request;

import org.jspecify.annotations.NullMarked;
