package dev.specula.models.tiny;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

import org.jspecify.annotations.Nullable;

/**
 * The embedded draft/target pair, resolved to directories on disk.
 *
 * <p>
 * ONNX Runtime and the tokenizer read files, not classpath streams, so the pair is
 * extracted once into a cache directory named after the hash of its {@code MANIFEST} (a
 * regenerated pair lands in a new directory). Extraction writes to a private temporary
 * directory, checks every file's SHA-256 against the manifest and then renames the
 * directory into place atomically: two processes starting at once both extract, one
 * rename wins, the other uses the winner's copy.
 *
 * <p>
 * The cache root is {@code $SPECULA_MODELS_CACHE}, else the system property
 * {@code specula.models.cache}, else {@code ~/.cache/specula/models-tiny}.
 */
public final class TinyModels {

    /**
     * Classpath folder holding the pair: {@code target/} and {@code draft/}, each with
     * {@code model.onnx} (attention mask) and {@code model_packed.onnx} (attention bias,
     * for unpadded batching) sharing {@code model.onnx_data}; and {@code griffin/}, the
     * target's GRIFFIN feature head.
     */
    static final String RESOURCE_ROOT = "dev/specula/models/tiny/";

    /**
     * Lines {@code <sha256>  <relative path>}, one per file under {@link #RESOURCE_ROOT}.
     */
    static final String MANIFEST = RESOURCE_ROOT + "MANIFEST";

    private static final String COMPLETE_MARKER = ".complete";

    private TinyModels() {
    }

    /**
     * Where the embedded pair lives on disk once extracted.
     *
     * @param targetPacked the target's {@code --packed} graph
     * ({@code target/model_packed.onnx}), or null
     * @param draftPacked the draft's {@code --packed} graph, or null
     */
    public record Pair(Path root, Path target, Path draft, @Nullable Path targetPacked, @Nullable Path draftPacked) {

        /**
         * Whether the target's {@code --packed} variant (attention bias input) is
         * present.
         */
        public boolean hasPackedTarget() {
            return targetPacked != null && Files.isRegularFile(targetPacked);
        }

        /**
         * The GRIFFIN feature head trained on the target ({@code griffin/}, made by
         * {@code python -m specula_tools train-griffin}), when the pair ships one.
         */
        public java.util.Optional<Path> head() {
            Path head = root.resolve("griffin");
            return Files.isRegularFile(head.resolve("model.onnx")) ? java.util.Optional.of(head)
                    : java.util.Optional.empty();
        }
    }

    /** Whether the pair's resources are on the classpath. */
    public static boolean isAvailable() {
        return TinyModels.class.getClassLoader().getResource(MANIFEST) != null;
    }

    /**
     * Extracts the pair into the default cache root (if not already there) and returns
     * its directories.
     */
    public static Pair extract() {
        return extract(defaultCacheRoot());
    }

    /**
     * Extracts the pair under {@code cacheRoot} (if not already there) and returns its
     * directories.
     */
    public static Pair extract(Path cacheRoot) {
        List<ManifestEntry> entries = readManifest();
        Path finalDir = cacheRoot.resolve(manifestHash(entries));
        if (!Files.isRegularFile(finalDir.resolve(COMPLETE_MARKER))) {
            try {
                Files.createDirectories(cacheRoot);
                Path staging = Files.createTempDirectory(cacheRoot, ".extract-");
                try {
                    for (ManifestEntry entry : entries) {
                        copyVerified(entry, staging.resolve(entry.path()));
                    }
                    Files.writeString(staging.resolve(COMPLETE_MARKER), "ok\n");
                    moveIntoPlace(staging, finalDir);
                }
                finally {
                    deleteRecursively(staging);
                }
            }
            catch (IOException ex) {
                throw new UncheckedIOException("Could not extract the embedded Specula models into " + cacheRoot
                        + ": set SPECULA_MODELS_CACHE (or -Dspecula.models.cache) to a writable directory", ex);
            }
        }
        Path targetPacked = finalDir.resolve("target").resolve("model_packed.onnx");
        Path draftPacked = finalDir.resolve("draft").resolve("model_packed.onnx");
        return new Pair(finalDir, finalDir.resolve("target"), finalDir.resolve("draft"),
                Files.isRegularFile(targetPacked) ? targetPacked : null,
                Files.isRegularFile(draftPacked) ? draftPacked : null);
    }

    static Path defaultCacheRoot() {
        String fromEnv = System.getenv("SPECULA_MODELS_CACHE");
        if (fromEnv != null && !fromEnv.isBlank()) {
            return Path.of(fromEnv);
        }
        String fromProperty = System.getProperty("specula.models.cache");
        if (fromProperty != null && !fromProperty.isBlank()) {
            return Path.of(fromProperty);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "specula", "models-tiny");
    }

    record ManifestEntry(String sha256, String path) {
    }

    static List<ManifestEntry> readManifest() {
        try (InputStream in = resource(MANIFEST)) {
            List<ManifestEntry> entries = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                String trimmed = line.strip();
                if (trimmed.isEmpty() || trimmed.startsWith("#")) {
                    continue;
                }
                int gap = trimmed.indexOf("  ");
                if (gap != 64 || trimmed.contains("..")) {
                    throw new IllegalStateException("Malformed line in " + MANIFEST + ": '" + trimmed + "'");
                }
                entries.add(new ManifestEntry(trimmed.substring(0, gap), trimmed.substring(gap + 2)));
            }
            return entries;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    private static String manifestHash(List<ManifestEntry> entries) {
        MessageDigest digest = sha256();
        for (ManifestEntry entry : entries) {
            digest.update((entry.sha256() + "  " + entry.path() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return HexFormat.of().formatHex(digest.digest()).substring(0, 16);
    }

    private static void copyVerified(ManifestEntry entry, Path destination) throws IOException {
        Files.createDirectories(destination.getParent());
        MessageDigest digest = sha256();
        try (InputStream in = new DigestInputStream(resource(RESOURCE_ROOT + entry.path()), digest)) {
            Files.copy(in, destination, StandardCopyOption.REPLACE_EXISTING);
        }
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equals(entry.sha256())) {
            throw new IOException("Embedded model file " + entry.path() + " is corrupt: sha256 " + actual
                    + " but the manifest says " + entry.sha256() + "; rebuild specula-models-tiny");
        }
    }

    private static void moveIntoPlace(Path staging, Path finalDir) throws IOException {
        try {
            Files.move(staging, finalDir, StandardCopyOption.ATOMIC_MOVE);
        }
        catch (AtomicMoveNotSupportedException ex) {
            throw new IOException("The cache directory's file system cannot rename atomically: " + finalDir, ex);
        }
        catch (IOException ex) {
            // Another process won the race (rename onto a non-empty directory fails); its
            // copy is
            // complete because it was renamed in whole, marker included.
            if (!Files.isRegularFile(finalDir.resolve(COMPLETE_MARKER))) {
                throw ex;
            }
        }
    }

    private static InputStream resource(String name) throws IOException {
        InputStream in = TinyModels.class.getClassLoader().getResourceAsStream(name);
        if (in == null) {
            throw new IOException(
                    "Classpath resource " + name + " is missing: is specula-models-tiny on the classpath?");
        }
        return in;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        }
        catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException(ex);
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }

}
