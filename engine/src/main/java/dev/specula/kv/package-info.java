/**
 * KV caches: rows of slots with rollback by masked holes, written in place by ONNX
 * Runtime where the graph can, and the prefix cache shared by requests.
 */
@NullMarked
package dev.specula.kv;

import org.jspecify.annotations.NullMarked;
