package cardsuite.simbridge;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;

/**
 * One card's persistent-write bookkeeping: counts the writes of the current command (the tear points a test can
 * aim at), cuts the power at an armed write, and keeps the undo log of the open transaction, which a commit drops
 * and an abort or the next power-up replays backwards.
 */
final class WriteJournal {
    private final List<Runnable> undoLog = new ArrayList<>();
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
        if (!admitWrite()) {
            throw PowerLoss.INSTANCE;
        }
        if (transactionOpen) {
            Field field = FieldAccess.find(owner, name);
            Object saved = FieldAccess.get(field, target);
            undoLog.add(() -> FieldAccess.set(field, target, saved));
        }
    }

    void openTransaction() {
        requirePower();
        transactionOpen = true;
    }

    void commitTransaction() {
        requirePower();
        undoLog.clear();
        transactionOpen = false;
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
