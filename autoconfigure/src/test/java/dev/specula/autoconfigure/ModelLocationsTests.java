package dev.specula.autoconfigure;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.core.io.DefaultResourceLoader;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A {@code classpath:} model inside a jar is extracted to files by content: a re-exported
 * model whose files have the same sizes is extracted anew, and a directory someone
 * planted where the extraction would go is not used.
 */
class ModelLocationsTests {

    private static final String LOCATION = "classpath:models/coder";

    @TempDir
    Path temp;

    private String tmpdir;

    @BeforeEach
    void useATemporaryTmpdir() throws IOException {
        tmpdir = System.getProperty("java.io.tmpdir");
        System.setProperty("java.io.tmpdir", Files.createDirectories(temp.resolve("tmp")).toString());
    }

    @AfterEach
    void restoreTmpdir() {
        System.setProperty("java.io.tmpdir", tmpdir);
    }

    @Test
    void aReExportedModelWithTheSameSizesIsExtractedAnew() throws Exception {
        Map<String, byte[]> first = model("weights-A-0001");
        Map<String, byte[]> second = model("weights-B-0002");
        assertThat(second.get("model.onnx")).hasSameSizeAs(first.get("model.onnx"));

        Path extractedFirst = resolve(jar("v1.jar", first));
        assertThat(extractedFirst.resolve("model.onnx")).hasBinaryContent(first.get("model.onnx"));
        Path extractedSecond = resolve(jar("v2.jar", second));
        assertThat(extractedSecond.resolve("model.onnx")).as("the new export, not the old copy")
            .hasBinaryContent(second.get("model.onnx"));
        assertThat(extractedFirst.resolve("model.onnx")).as("the first extraction is left as it was")
            .hasBinaryContent(first.get("model.onnx"));
    }

    @Test
    void aDirectoryPlantedAtThePredictablePathIsNotTrusted() throws Exception {
        Map<String, byte[]> model = model("weights-A-0001");
        Map<String, byte[]> planted = model("weights-X-6666");
        // where an extraction could be expected: by the location's hash, or by the
        // content's hash
        Path root = Path.of(System.getProperty("java.io.tmpdir"), "specula-models");
        for (Path directory : new Path[] { root.resolve(locationHash(LOCATION)), root.resolve(contentHash(model)) }) {
            Files.createDirectories(directory);
            for (Map.Entry<String, byte[]> file : planted.entrySet()) {
                Files.write(directory.resolve(file.getKey()), file.getValue());
            }
        }

        Path extracted = resolve(jar("model.jar", model));

        for (Map.Entry<String, byte[]> file : model.entrySet()) {
            assertThat(extracted.resolve(file.getKey())).as(file.getKey()).hasBinaryContent(file.getValue());
        }
    }

    private Path resolve(Path jar) throws IOException {
        try (URLClassLoader loader = new URLClassLoader(new URL[] { jar.toUri().toURL() }, null)) {
            return ModelLocations.resolve(LOCATION, "specula.target.location", new DefaultResourceLoader(loader));
        }
    }

    /**
     * Three files; model.onnx is the same size whatever {@code weights} (14 characters)
     * says.
     */
    private static Map<String, byte[]> model(String weights) {
        Map<String, byte[]> files = new TreeMap<>();
        files.put("config.json", "{\"model_type\": \"llama\"}".getBytes(StandardCharsets.UTF_8));
        files.put("model.onnx", ("onnx:" + weights).getBytes(StandardCharsets.UTF_8));
        files.put("tokenizer.json", "{}".getBytes(StandardCharsets.UTF_8));
        return files;
    }

    private Path jar(String name, Map<String, byte[]> files) throws IOException {
        Path jar = temp.resolve(name);
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream zip = new JarOutputStream(out)) {
            zip.putNextEntry(new JarEntry("models/"));
            zip.closeEntry();
            zip.putNextEntry(new JarEntry("models/coder/"));
            zip.closeEntry();
            for (Map.Entry<String, byte[]> file : files.entrySet()) {
                zip.putNextEntry(new JarEntry("models/coder/" + file.getKey()));
                zip.write(file.getValue());
                zip.closeEntry();
            }
        }
        return jar;
    }

    private static String locationHash(String location) throws Exception {
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(location.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest, 0, 8);
    }

    /**
     * As TinyModels names its directory: sha-256 over "sha256(file) name" lines in name
     * order.
     */
    private static String contentHash(Map<String, byte[]> files) throws Exception {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        for (Map.Entry<String, byte[]> file : new TreeMap<>(files).entrySet()) {
            String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(file.getValue()));
            digest.update((sha + "  " + file.getKey() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return HexFormat.of().formatHex(digest.digest()).substring(0, 16);
    }

}
