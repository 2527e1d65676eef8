// Server state: every read goes through TanStack Query, keyed by what it reads, so pages that show
// the same data share it and a change invalidates every view of it at once.
import { QueryClient, useQuery, type QueryKey } from '@tanstack/react-query';
import { ApiError } from './api';

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      refetchOnWindowFocus: false,
      // A 4xx will not change by asking again; a network blip or a 503 may.
      retry: (count, err) => count < 2 && !(err instanceof ApiError && err.problem.status < 500),
    },
  },
});

/** A read of the API (or any JSON): cached under `key`, refetched when the key changes. */
export function useApi<T>(key: QueryKey, load: () => Promise<T>, enabled = true) {
  return useQuery({ queryKey: key, queryFn: load, enabled });
}

/** Everything cached under a key prefix is stale: views showing it refetch. */
export function invalidate(...prefix: unknown[]): Promise<void> {
  return queryClient.invalidateQueries({ queryKey: prefix });
}
