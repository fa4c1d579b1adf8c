package cardsuite.simbridge;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import javacard.framework.TransactionException;

/**
 * One card's persistent-write bookkeeping: counts the writes of the current command (the tear points a test can
 * aim at), cuts the power at an armed write, and keeps the undo log of the open transaction, which a commit drops
 * and an abort or the next power-up replays backwards.
 *
 * <p>Commit capacity: the undo log lives in a commit buffer of {@link #capacity} bytes, as on a card. Each journaled
 * write takes one entry of {@link #ENTRY_HEADER} bytes (object, offset, length: 2 each, as a card with 16-bit
 * references keeps them) plus the old contents of what it overwrites: per element 1 byte for byte/boolean, 2 for
 * short/char and for a reference, 4 for int/float, 8 for long/double; a field store the same by the field's type;
 * a Util.arrayCopy/setShort one entry for its whole range. Every journaled write is counted, also a second write
 * of the same cell (a card that logs each location once needs less: the figures are an upper bound). A write that
 * would overflow the buffer is not made and throws TransactionException.BUFFER_FULL; the transaction stays open
 * (the applet may abort it; the runtime aborts it when process() returns). Non-atomic Util writes never take space.
 */
final class WriteJournal {
    /** NXP JCOP 4's commit buffer (the figure its data sheets give): the default of a simulated card. */
    static final int DEFAULT_COMMIT_CAPACITY = 5120;
    static final int ENTRY_HEADER = 6;
    private static final int REFERENCE_SIZE = 2;
    private final List<Runnable> undoLog = new ArrayList<>();
    private int capacity = DEFAULT_COMMIT_CAPACITY;
    /** Commit buffer bytes the open transaction uses, and the most any transaction of this command used. */
    private int used;
    private int commandPeak;
    private boolean transactionOpen;
    private int writes;
    /** Crypto operations of the current command by name ("MessageDigest.doFinal"): what a bench counts. */
    private final java.util.Map<String, Integer> operations = new java.util.HashMap<>();
    private int tearAt;
    private boolean powerLost;

    /** Starts counting a command's writes; {@code tearAtWrite} > 0 cuts the power at that write, 0 never. */
    void startCommand(int tearAtWrite) {
        operations.clear();
        writes = 0;
        commandPeak = 0;
        tearAt = tearAtWrite;
    }

    /** Writes outside a command (installation, power-up) are never torn. */
    void endCommand() {
        tearAt = 0;
    }

    int writeCount() {
        return writes;
    }

    boolean powerLost() {
        return powerLost;
    }

    /**
     * Counts one persistent write. Returns false when the power fails during this very write, which then must not
     * complete (a non-atomic one may leave a partial effect first); throws {@link PowerLoss} when the power is
     * already gone.
     */
    boolean admitWrite() {
        requirePower();
        writes++;
        if (writes == tearAt) {
            powerLost = true;
            return false;
        }
        return true;
    }

    /** Before an atomic write of {@code array[offset, offset + length)}: counts it, tears or logs the old bytes. */
    void beforeAtomicWrite(Object array, int offset, int length) {
        checkRange(array, offset, length);
        if (transactionOpen) {
            reserve(length * sizeOf(array.getClass().getComponentType()));
        }
        if (!admitWrite()) {
            throw PowerLoss.INSTANCE;
        }
        if (transactionOpen) {
            Object saved = Array.newInstance(array.getClass().getComponentType(), length);
            System.arraycopy(array, offset, saved, 0, length);
            undoLog.add(() -> System.arraycopy(saved, 0, array, offset, length));
        }
    }

    /** Before a write of field {@code owner.name} of {@code target} (null for a static field). */
    void beforeFieldWrite(Object target, Class<?> owner, String name) {
        Field field = transactionOpen ? FieldAccess.find(owner, name) : null;
        if (field != null) {
            reserve(sizeOf(field.getType()));
        }
        if (!admitWrite()) {
            throw PowerLoss.INSTANCE;
        }
        if (field != null) {
            Object saved = FieldAccess.get(field, target);
            undoLog.add(() -> FieldAccess.set(field, target, saved));
        }
    }

    void openTransaction() {
        requirePower();
        transactionOpen = true;
        used = 0;
    }

    void commitTransaction() {
        requirePower();
        undoLog.clear();
        transactionOpen = false;
        used = 0;
    }

    /** Takes {@code dataBytes} plus an entry header from the commit buffer, or throws BUFFER_FULL taking nothing. */
    private void reserve(int dataBytes) {
        requirePower();
        int needed = used + ENTRY_HEADER + dataBytes;
        if (needed > capacity) {
            TransactionException.throwIt(TransactionException.BUFFER_FULL);
        }
        used = needed;
        commandPeak = Math.max(commandPeak, used);
    }

    private static int sizeOf(Class<?> type) {
        if (type == byte.class || type == boolean.class) {
            return 1;
        }
        if (type == short.class || type == char.class) {
            return 2;
        }
        if (type == int.class || type == float.class) {
            return 4;
        }
        if (type == long.class || type == double.class) {
            return 8;
        }
        return REFERENCE_SIZE;
    }

    void setCapacity(int bytes) {
        if (bytes < ENTRY_HEADER + 1 || bytes > Short.MAX_VALUE) {
            throw new IllegalArgumentException("commit capacity " + bytes + ": from " + (ENTRY_HEADER + 1)
                    + " to " + Short.MAX_VALUE + " bytes");
        }
        capacity = bytes;
    }

    int capacity() {
        return capacity;
    }

    /** What JCSystem.getUnusedCommitCapacity answers: all of it outside a transaction. */
    int unused() {
        return capacity - (transactionOpen ? used : 0);
    }

    /** The largest commit buffer use of a transaction in the last command (0: no journaled write in one). */
    int commandPeak() {
        return commandPeak;
    }

    void abortTransaction() {
        requirePower();
        rollBack();
    }

    /** What the card does when power comes back: finish the interrupted transaction by undoing it. */
    void powerUp() {
        rollBack();
        powerLost = false;
    }

    private void rollBack() {
        for (int i = undoLog.size() - 1; i >= 0; i--) {
            undoLog.get(i).run();
        }
        undoLog.clear();
        transactionOpen = false;
        used = 0;
    }

    private void requirePower() {
        if (powerLost) {
            throw PowerLoss.INSTANCE;
        }
    }

    /** The bounds check the store itself would make, done first so a failing store is neither counted nor logged. */
    static void checkRange(Object array, int offset, int length) {
        int size = Array.getLength(array);
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new ArrayIndexOutOfBoundsException(
                    "[" + offset + ", " + (offset + length) + ") outside an array of length " + size);
        }
    }

    void countOperation(String name) {
        operations.merge(name, 1, Integer::sum);
    }

    int operationCount(String name) {
        return operations.getOrDefault(name, 0);
    }
}
