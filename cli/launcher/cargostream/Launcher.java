package cargostream;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * The main class of a jar written by `cargo stream package`: runs the native job inside it.
 *
 * <p>It extracts the jar's files (all but META-INF/ and this class) into a private temporary
 * folder, rejecting any entry whose path would escape it; makes the binary named by the
 * manifest's {@code Cargo-Stream-Binary} executable; runs it with this process's arguments and
 * environment plus {@code CARGO_STREAM_DEPLOY_MODE=cluster}, a variable NAME for each
 * {@code SPARK_CARGO_STREAM_ENV_NAME} variable (the submitter's SPARK_* variables reach a driver
 * so) and for each {@code spark.cargo-stream.env.NAME} system property; forwards SIGTERM (the JVM's
 * shutdown hook sends SIGTERM to the job and waits for its graceful stop, then exits 143); and
 * otherwise exits with the job's exit code, a non-zero one reported as the last line of its
 * stderr ({@code cargo-stream launcher: the job exited with code N}). Compiled with {@code javac --release 8}: the class file is committed and the
 * repository's tests check it against this source.
 */
public final class Launcher {
    /** How long a stopping job may take after SIGTERM before it is killed. */
    private static final long GRACE_SECONDS = 60;
    /** Spark properties that become the job's environment variables. */
    private static final String ENV_PREFIX = "spark.cargo-stream.env.";
    /** Environment variables that become the job's environment variables, prefix removed. */
    private static final String ENV_VAR_PREFIX = "SPARK_CARGO_STREAM_ENV_";

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        File jar = new File(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        final Path dir = Files.createTempDirectory("cargo-stream-",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        String binary;
        try (JarFile jf = new JarFile(jar)) {
            binary = jf.getManifest().getMainAttributes().getValue("Cargo-Stream-Binary");
            if (binary == null) {
                fail("the jar's manifest names no Cargo-Stream-Binary: was it written by cargo stream package?");
            }
            extract(jf, dir);
        } catch (IOException e) {
            delete(dir.toFile());
            throw e;
        }
        Path exe = inside(dir, binary);
        if (!exe.toFile().setExecutable(true, true)) {
            fail("cannot make " + exe + " executable");
        }

        List<String> command = new ArrayList<String>();
        command.add(exe.toString());
        command.addAll(Arrays.asList(args));
        ProcessBuilder builder = new ProcessBuilder(command).inheritIO();
        builder.environment().put("CARGO_STREAM_DEPLOY_MODE", "cluster");
        // spark-submit's standalone cluster-mode client hands the driver only the submitter's
        // SPARK_* variables: a job variable NAME travels as SPARK_CARGO_STREAM_ENV_NAME (never
        // on a command line, unlike a property) and reaches the job under its own name.
        for (String key : System.getenv().keySet()) {
            if (key.startsWith(ENV_VAR_PREFIX) && key.length() > ENV_VAR_PREFIX.length()) {
                builder.environment().remove(key);
                builder.environment().put(key.substring(ENV_VAR_PREFIX.length()), System.getenv(key));
            }
        }
        // Spark's cluster-mode clients do not all pass the submitter's environment to the
        // driver; `--conf spark.cargo-stream.env.NAME=VALUE` reaches it as a system property.
        for (String key : System.getProperties().stringPropertyNames()) {
            if (key.startsWith(ENV_PREFIX) && key.length() > ENV_PREFIX.length()) {
                builder.environment().put(key.substring(ENV_PREFIX.length()), System.getProperty(key));
            }
        }
        builder.environment().put("CARGO_STREAM_BUNDLE_DIR", dir.toString());
        Path config = dir.resolve("Stream.toml");
        if (Files.isRegularFile(config)) {
            builder.environment().put("CARGO_STREAM_CONFIG", config.toString());
        }
        final Process job = builder.start();
        final boolean[] exiting = {false};
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            synchronized (exiting) {
                if (exiting[0]) {
                    return; // the job ended by itself: main is exiting with its code
                }
            }
            // SIGTERM or SIGINT reached the JVM: pass SIGTERM on and wait for the graceful stop.
            job.destroy();
            int code = 143;
            try {
                if (job.waitFor(GRACE_SECONDS, TimeUnit.SECONDS)) {
                    // Stopped on request: even a clean graceful stop exits 143 (128 + SIGTERM),
                    // so that the cluster manager records the driver as KILLED, not FINISHED.
                    int exit = job.exitValue();
                    code = exit == 0 ? 143 : exit;
                } else {
                    job.destroyForcibly().waitFor();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            delete(dir.toFile());
            Runtime.getRuntime().halt(code);
        }));
        int code = job.waitFor();
        synchronized (exiting) {
            exiting[0] = true;
        }
        delete(dir.toFile());
        if (code != 0) {
            // Spark's status of a FAILED driver carries no exit code: say it, last, where
            // `cargo stream` shows the tail of a failed job's stderr.
            System.err.println(exitLine(code));
            System.err.flush();
        }
        System.exit(code);
    }

    /** Copies the jar's files into dir, refusing entries that would land outside it. */
    private static void extract(JarFile jar, Path dir) throws IOException {
        Enumeration<JarEntry> entries = jar.entries();
        while (entries.hasMoreElements()) {
            JarEntry entry = entries.nextElement();
            String name = entry.getName();
            if (name.startsWith("META-INF/") || name.startsWith("cargostream/")) {
                continue;
            }
            Path target = inside(dir, name);
            if (entry.isDirectory()) {
                Files.createDirectories(target);
                continue;
            }
            Files.createDirectories(target.getParent());
            InputStream in = jar.getInputStream(entry);
            try {
                Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                in.close();
            }
        }
    }

    /** dir/name, or an error if name is absolute or climbs out of dir. */
    private static Path inside(Path dir, String name) throws IOException {
        Path target = dir.resolve(name).normalize();
        if (name.startsWith("/") || !target.startsWith(dir) || target.equals(dir)) {
            fail("refusing the jar entry `" + name + "`: it would be written outside " + dir);
        }
        return target;
    }

    /** Removes a file or a folder and everything in it; a failure is only reported. */
    private static void delete(File file) {
        File[] children = file.listFiles();
        if (children != null) {
            for (File child : children) {
                delete(child);
            }
        }
        if (!file.delete() && file.exists()) {
            System.err.println("cargo-stream launcher: could not remove " + file);
        }
    }

    /**
     * The one stderr line that reports a job's non-zero exit: {@code cargo-stream launcher: the
     * job exited with code N}, and the signal for a code above 128 (Java's 128 + signal).
     */
    static String exitLine(int code) {
        String line = "cargo-stream launcher: the job exited with code " + code;
        if (code > 128 && code < 160) {
            line += " (killed by signal " + (code - 128) + ")";
        }
        return line;
    }

    private static void fail(String message) throws IOException {
        throw new IOException("cargo-stream launcher: " + message);
    }
}
