package dev.specula.autoconfigure;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import org.springframework.core.io.Resource;
import org.springframework.core.io.ResourceLoader;
import org.springframework.core.io.support.PathMatchingResourcePatternResolver;

/**
 * Turns a model location property ({@code /models/x}, {@code file:/models/x},
 * {@code classpath:models/x}, a directory or its {@code model.onnx}) into a file-system
 * path: ONNX Runtime loads models from paths (external weights, models over 2 GB). A
 * classpath directory inside a jar is copied out once to
 * {@code java.io.tmpdir/specula-models/<hash of its contents>}, checked before it is
 * reused.
 */
final class ModelLocations {

    private static final String CLASSPATH = "classpath:";

    private static final String FILE = "file:";

    private ModelLocations() {
    }

    static Path resolve(String location, String property, ResourceLoader resourceLoader) {
        if (location == null || location.isBlank()) {
            throw new ConfiguredModelLoadException(property, Path.of(""), "No model location: set " + property
                    + " to a model directory (file: or classpath:), or add dev.specula:specula-models-tiny for the embedded pair");
        }
        String trimmed = location.trim();
        if (!trimmed.startsWith(CLASSPATH)) {
            Path path = filePath(trimmed, property);
            if (!Files.exists(path)) {
                throw new ConfiguredModelLoadException(property, path,
                        "Model location " + path.toAbsolutePath() + " (" + property + ") does not exist: point "
                                + property + " at a directory with model.onnx, config.json and tokenizer.json");
            }
            return path;
        }
        Resource resource = resourceLoader.getResource(trimmed);
        try {
            if (resource.exists() && resource.isFile()) {
                return resource.getFile().toPath();
            }
            return extract(trimmed, property, resourceLoader);
        }
        catch (IOException ex) {
            throw new ConfiguredModelLoadException(property, Path.of(trimmed.substring(CLASSPATH.length())),
                    "Cannot read model location " + trimmed + " (" + property + "): " + ex.getMessage(), ex);
        }
    }

    /**
     * The graph named by a {@code file} property inside a resolved location, or the
     * location itself when the property is unset.
     */
    static Path graph(Path location, String file, String property) {
        if (file == null) {
            return location;
        }
        if (!Files.isDirectory(location)) {
            throw new ConfiguredModelLoadException(property, location,
                    property + " (" + file + ") names a graph inside a model directory, but the location " + location
                            + " is a file: point the location at the directory, or drop " + property);
        }
        Path graph = location.resolve(file.trim()).normalize();
        if (!Files.isRegularFile(graph)) {
            throw new ConfiguredModelLoadException(property, graph, property + " names " + file.trim()
                    + ", which is not in " + location + "; its graphs are: " + graphsIn(location));
        }
        return graph;
    }

    /**
     * The .onnx files of a model directory and of its onnx/ subdirectory, relative to it.
     */
    private static String graphsIn(Path directory) {
        try (Stream<Path> files = Stream.concat(list(directory), list(directory.resolve("onnx")))) {
            String graphs = String.join(", ",
                    files.filter((file) -> file.getFileName().toString().endsWith(".onnx"))
                        .map((file) -> directory.relativize(file).toString().replace('\\', '/'))
                        .sorted()
                        .toList());
            return graphs.isEmpty() ? "none" : graphs;
        }
    }

    private static Stream<Path> list(Path directory) {
        if (!Files.isDirectory(directory)) {
            return Stream.empty();
        }
        try {
            return Files.list(directory);
        }
        catch (IOException ex) {
            return Stream.empty();
        }
    }

    /**
     * {@code /x}, {@code file:/x}, {@code file:///x} or {@code file:relative/x} as a
     * path.
     */
    private static Path filePath(String location, String property) {
        if (!location.startsWith(FILE)) {
            return Path.of(location);
        }
        try {
            return location.startsWith(FILE + "//") ? Path.of(URI.create(location))
                    : Path.of(location.substring(FILE.length()));
        }
        catch (IllegalArgumentException ex) {
            throw new ConfiguredModelLoadException(property, Path.of(location.substring(FILE.length())),
                    "Model location " + location + " (" + property + ") is not a valid file: URL: " + ex.getMessage(),
                    ex);
        }
    }

    /**
     * Copies every resource under a classpath directory (in a jar) to a directory named
     * after the hash of their contents, as {@code TinyModels.extract} does: the files are
     * hashed, staged into a fresh temporary directory and renamed into place atomically.
     * A directory already at that name is used only when it is ours and every file in it
     * has the expected content; anything else there (a stale copy, one planted by another
     * user on a shared temporary directory) is left alone and the staged copy is used
     * instead.
     */
    private static Path extract(String location, String property, ResourceLoader resourceLoader) throws IOException {
        String directory = location.substring(CLASSPATH.length()).replaceFirst("^/+", "").replaceFirst("/+$", "");
        String modelFile = null;
        if (directory.endsWith(".onnx")) {
            int slash = directory.lastIndexOf('/');
            modelFile = directory.substring(slash + 1);
            directory = slash < 0 ? "" : directory.substring(0, slash);
        }
        PathMatchingResourcePatternResolver resolver = new PathMatchingResourcePatternResolver(resourceLoader);
        Map<String, Resource> files = new TreeMap<>();
        for (Resource resource : resolver.getResources("classpath*:" + directory + "/*")) {
            String name = resource.getFilename();
            if (name != null && !name.isEmpty() && resource.isReadable()) {
                files.putIfAbsent(name, resource);
            }
        }
        if (files.isEmpty()) {
            throw new ConfiguredModelLoadException(property, Path.of(directory),
                    "Nothing found at " + location + " (" + property
                            + "): put the model directory on the classpath, or point " + property
                            + " at a file: location");
        }
        Map<String, String> hashes = new TreeMap<>();
        for (Map.Entry<String, Resource> file : files.entrySet()) {
            try (InputStream in = file.getValue().getInputStream()) {
                hashes.put(file.getKey(), sha256(in));
            }
        }
        Path root = cacheRoot();
        Path target = root.resolve(contentHash(hashes));
        Path extracted = isTrusted(target, hashes) ? target : stage(root, target, files, hashes);
        return modelFile == null ? extracted : extracted.resolve(modelFile);
    }

    /**
     * Where classpath models are extracted: {@code java.io.tmpdir/specula-models}, if it
     * is ours.
     */
    private static Path cacheRoot() throws IOException {
        Path root = Path.of(System.getProperty("java.io.tmpdir"), "specula-models");
        Files.createDirectories(root);
        return root;
    }

    /**
     * Copies the files into a fresh directory, checks them, and renames it to
     * {@code target} if it is free.
     */
    private static Path stage(Path root, Path target, Map<String, Resource> files, Map<String, String> hashes)
            throws IOException {
        Path staging = Files.createTempDirectory(isOwn(root) ? root : Path.of(System.getProperty("java.io.tmpdir")),
                ".specula-extract-");
        for (Map.Entry<String, Resource> file : files.entrySet()) {
            try (InputStream in = file.getValue().getInputStream()) {
                Files.copy(in, staging.resolve(file.getKey()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        if (!isTrusted(staging, hashes)) {
            throw new IOException("The model's classpath resources changed while they were extracted to " + staging);
        }
        if (!isOwn(root) || Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            // something we do not trust is at the target name: keep our own copy apart
            return staging;
        }
        try {
            Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            return target;
        }
        catch (IOException ex) {
            // another process renamed its copy first: use it if it checks out, else ours
            return isTrusted(target, hashes) ? target : staging;
        }
    }

    /**
     * Whether {@code directory} is ours (not a link) and holds exactly the files with the
     * expected contents.
     */
    private static boolean isTrusted(Path directory, Map<String, String> hashes) throws IOException {
        if (!Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS) || !isOwn(directory)) {
            return false;
        }
        try (Stream<Path> entries = Files.list(directory)) {
            if (entries.count() != hashes.size()) {
                return false;
            }
        }
        for (Map.Entry<String, String> expected : hashes.entrySet()) {
            Path file = directory.resolve(expected.getKey());
            if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS) || !isOwn(file)) {
                return false;
            }
            try (InputStream in = Files.newInputStream(file)) {
                if (!sha256(in).equals(expected.getValue())) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * Whether the current user (the owner of a file this process creates) owns
     * {@code path}; true where owners are not reported.
     */
    private static boolean isOwn(Path path) throws IOException {
        try {
            UserPrincipal owner = Files.getOwner(path, LinkOption.NOFOLLOW_LINKS);
            Path probe = Files.createTempFile("specula-owner-", ".probe");
            try {
                return owner.equals(Files.getOwner(probe));
            }
            finally {
                Files.deleteIfExists(probe);
            }
        }
        catch (UnsupportedOperationException ex) {
            return true;
        }
    }

    /**
     * As {@code TinyModels} names its directory: sha-256 over "sha256(file) name" lines
     * in name order, 16 hex digits.
     */
    static String contentHash(Map<String, String> hashes) {
        MessageDigest digest = digest();
        for (Map.Entry<String, String> file : new TreeMap<>(hashes).entrySet()) {
            digest.update((file.getValue() + "  " + file.getKey() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return HexFormat.of().formatHex(digest.digest()).substring(0, 16);
    }

    private static String sha256(InputStream in) throws IOException {
        MessageDigest digest = digest();
        byte[] buffer = new byte[1 << 16];
        for (int read = in.read(buffer); read >= 0; read = in.read(buffer)) {
            digest.update(buffer, 0, read);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        }
        catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException(ex);
        }
    }

}
