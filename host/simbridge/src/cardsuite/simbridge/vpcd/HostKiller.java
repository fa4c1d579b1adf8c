package cardsuite.simbridge.vpcd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * {@code --kill-host-at N:PIDFILE}: on the Nth command APDU the card processes the command, then the host
 * process whose PID is in PIDFILE (read at that moment) is sent SIGKILL and reaped before the response goes
 * out. The host dies at a chosen point of its protocol, never by timing luck, and the card's state (whatever
 * the command did) stays in the bridge for the next host to find. One-shot: later commands are answered.
 */
final class HostKiller {
    private final int at;
    private final Path pidFile;
    private int commands;

    private HostKiller(int at, Path pidFile) {
        this.at = at;
        this.pidFile = pidFile;
    }

    /** @throws IllegalArgumentException for the user */
    static HostKiller parse(String text) {
        int colon = text.indexOf(':');
        try {
            int at = Integer.parseInt(text.substring(0, Math.max(colon, 0)));
            if (at >= 1 && colon < text.length() - 1) {
                return new HostKiller(at, Paths.get(text.substring(colon + 1)));
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        throw new IllegalArgumentException("--kill-host-at wants N:PIDFILE with N >= 1, got " + text);
    }

    /** Called after the card has processed a command and before its response is sent; returns what to log. */
    String afterCommand() {
        commands++;
        if (commands != at) {
            return null;
        }
        long pid;
        try {
            pid = Long.parseLong(new String(Files.readAllBytes(pidFile), StandardCharsets.US_ASCII).trim());
        } catch (IOException | NumberFormatException e) {
            return "--kill-host-at: no PID in " + pidFile + " at command " + at + " (" + e + "); nothing killed";
        }
        Optional<ProcessHandle> host = ProcessHandle.of(pid);
        if (!host.isPresent()) {
            return "--kill-host-at: no process " + pid + " at command " + at;
        }
        host.get().destroyForcibly(); // SIGKILL on Linux
        try {
            host.get().onExit().get(10, TimeUnit.SECONDS); // dead before the response leaves
        } catch (Exception notReaped) {
            // its parent reaps it; the signal is delivered, which is what matters
        }
        return "--kill-host-at: killed host process " + pid + " after command " + at;
    }
}
