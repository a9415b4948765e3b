/**
 * ONNX Runtime decoders: model files, configuration, graph signatures and the batch-first
 * forward step.
 */
@NullMarked
package dev.specula.model;

import org.jspecify.annotations.NullMarked;
