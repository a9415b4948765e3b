/**
 * KV caches: rows of slots with rollback by masked holes, and the prefix cache shared by
 * requests.
 */
@NullMarked
package dev.specula.kv;

import org.jspecify.annotations.NullMarked;
